package filesync

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/vault"
)

// RestoreOptions say what Restore downloads and where to.
type RestoreOptions struct {
	Store    objstore.Store // the data view, as given to Open
	DataDir  string
	Includes []Include // only objects of these are restored
	// StateDir receives the manifest of the restored files, so the syncer that
	// starts next does not upload them again; <DataDir>/.vwstream when empty.
	StateDir    string
	Parallelism int // downloads in flight; DefaultRestoreParallelism when 0
	Logger      *slog.Logger
}

// RestoreResult is what Restore put in place.
type RestoreResult struct {
	Files   int      // files written
	Bytes   int64    // their total size
	Skipped []string // keys under files/ that belong to no include
}

// restoredFile is one download staged for the move into place.
type restoredFile struct {
	key, staged, final string
	root               string // the include's path
	info               objstore.ObjectInfo
	hash               string
}

// Restore downloads every object under files/ that belongs to an include into
// a staging folder beside each include (same filesystem), checks each against
// its listed size (sealed objects are also authenticated while read), and only
// when all succeeded moves them into place. A failed listing or download fails
// the restore and leaves the data folder as it was. Files already in place are
// replaced by the stored version; local files the store lacks are kept.
func Restore(ctx context.Context, opts RestoreOptions) (RestoreResult, error) {
	var res RestoreResult
	if opts.Store == nil {
		return res, errors.New("restore files: no store")
	}
	if opts.Parallelism <= 0 {
		opts.Parallelism = DefaultRestoreParallelism
	}
	if opts.StateDir == "" {
		opts.StateDir = filepath.Join(opts.DataDir, DefaultStateDirName)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := newPaths(opts.Includes, nil)

	// The whole listing first: an error here must never read as "nothing stored".
	remote, err := listAll(ctx, opts.Store, layout.Files)
	if err != nil {
		return res, fmt.Errorf("restore files: %w", err)
	}

	st := &staging{dirs: map[string]string{}}
	defer st.cleanup()
	var files []*restoredFile
	for key, info := range remote {
		abs, inc, ok := p.localOf(key)
		if !ok {
			res.Skipped = append(res.Skipped, key)
			continue
		}
		files = append(files, &restoredFile{key: key, final: abs, root: p.includes[inc].Path, info: info})
	}
	for _, f := range files {
		if f.staged, err = st.path(f.root, f.final); err != nil {
			return res, fmt.Errorf("restore files: %w", err)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Parallelism)
	for _, f := range files {
		g.Go(func() error { return download(gctx, opts.Store, f) })
	}
	if err := g.Wait(); err != nil {
		return res, fmt.Errorf("restore files: %w (the data folder was not changed)", err)
	}

	// Every byte is verified on disk: now the renames, which do not fail short
	// of a broken filesystem.
	synced := map[string]bool{}
	for _, f := range files {
		dir := filepath.Dir(f.final)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return res, fmt.Errorf("restore files: move into place: %w", err)
		}
		if err := os.Rename(f.staged, f.final); err != nil {
			return res, fmt.Errorf("restore files: move into place: %w", err)
		}
		synced[dir] = true
		res.Files++
		res.Bytes += f.info.Size
	}
	for dir := range synced {
		if err := vault.SyncDir(dir); err != nil {
			return res, fmt.Errorf("restore files: %w", err)
		}
	}

	if err := writeRestoredManifest(opts.StateDir, files); err != nil {
		log.Warn("restored files are in place, but their manifest was not saved: the next sync uploads them again", "error", err)
	}
	log.Info("files restored", "files", res.Files, "bytes", res.Bytes, "skipped", len(res.Skipped))
	return res, nil
}

// download writes one object to its staged path and checks its size.
func download(ctx context.Context, store objstore.Store, f *restoredFile) error {
	rc, err := store.Get(ctx, f.key, 0, -1)
	if err != nil {
		return fmt.Errorf("download %s: %w", f.key, err)
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(f.staged), 0o700); err != nil {
		return fmt.Errorf("download %s: %w", f.key, err)
	}
	out, err := os.OpenFile(f.staged, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("download %s: %w", f.key, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), rc)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download %s: %w", f.key, err)
	}
	if n != f.info.Size {
		return fmt.Errorf("download %s: %w: got %d bytes, listed %d", f.key, objstore.ErrChecksum, n, f.info.Size)
	}
	f.hash = hexSum(h)
	return nil
}

// staging hands out staging paths: one hidden folder beside each include, so the
// final rename stays on one filesystem; cleanup removes whatever is left.
type staging struct {
	mu   sync.Mutex
	dirs map[string]string // parent -> staging folder
}

func (s *staging) path(root, final string) (string, error) {
	// Stage beside the include (in its parent, or the nearest existing folder
	// above), never inside it.
	parent := filepath.Dir(root)
	for {
		if _, err := os.Stat(parent); err == nil {
			break
		}
		next := filepath.Dir(parent)
		if next == parent {
			break
		}
		parent = next
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dir, ok := s.dirs[parent]
	if !ok {
		var err error
		if dir, err = os.MkdirTemp(parent, ".vwstream-restore-*"); err != nil {
			return "", fmt.Errorf("staging folder: %w", err)
		}
		s.dirs[parent] = dir
	}
	rel, err := filepath.Rel(parent, final)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("staging path for %s: outside %s", final, parent)
	}
	return filepath.Join(dir, rel), nil
}

func (s *staging) cleanup() {
	for _, dir := range s.dirs {
		os.RemoveAll(dir)
	}
}

// writeRestoredManifest records the restored files as stored, with the mtimes
// they now have on disk.
func writeRestoredManifest(stateDir string, files []*restoredFile) error {
	path := filepath.Join(stateDir, ManifestName)
	m, _ := loadManifest(path)
	for _, f := range files {
		fi, err := os.Lstat(f.final)
		if err != nil {
			return err
		}
		m.Files[f.key] = entry{Size: fi.Size(), MTime: fi.ModTime().UnixNano(), Hash: f.hash, ETag: f.info.ETag}
		delete(m.Missing, f.key)
	}
	return m.save(path)
}
