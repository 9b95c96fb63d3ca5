package snapshot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/serverdb"
	"github.com/vwstream/vwstream/internal/vault"
)

// RestoreOptions say which snapshot to restore where.
type RestoreOptions struct {
	Store objstore.Store // the destination holding snapshots/
	Namer *Namer         // BACKUP_FILENAME, to find the newest for "latest"; nil for the default
	Name  string         // archive name (with or without suffix, with or without snapshots/), or "latest"
	To    string         // the data folder to restore into
	Force bool           // replace a non-empty To, keeping it aside until the restore succeeded
	Keys  seal.SnapshotKeys
	// DryRun restores and checks into a temporary folder next to To (or in
	// os.TempDir when To is empty) and removes it: the `verify` drill.
	DryRun bool
	// InPlace replaces the contents of To rather than To itself; it is chosen
	// automatically when To is a mount point, which cannot be renamed.
	InPlace bool
	// DatabaseURL receives a server database's dump (empty unless Force);
	// nil writes the dump into the restored folder as DumpFileName.
	DatabaseURL *serverdb.URL
	ServerTools serverdb.Tools
	Logger      *slog.Logger
}

// RestoreResult is what a restore found and did.
type RestoreResult struct {
	Name               string           `json:"name"`
	To                 string           `json:"to,omitempty"`
	Files              int              `json:"files"`
	Bytes              int64            `json:"bytes"`
	CapturedAt         time.Time        `json:"captured_at"`
	Integrity          string           `json:"integrity"`
	Tables             map[string]int64 `json:"tables"`
	Degraded           bool             `json:"degraded"`            // as recorded when the snapshot was taken
	MissingAttachments int              `json:"missing_attachments"` // attachment rows without their file in the restored folder
	Changed            []string         `json:"changed,omitempty"`   // large files that shrank during capture, zero-padded
	Duration           time.Duration    `json:"duration_ns"`
	// A server database's snapshot: its dump's facts, and where it went.
	Database   *serverdb.Info `json:"database,omitempty"`
	LoadedInto string         `json:"loaded_into,omitempty"` // the URL, password hidden
	DumpFile   string         `json:"dump_file,omitempty"`   // in To, when not loaded
}

// Restore downloads a snapshot, decrypts, decompresses and unpacks it into a
// temporary folder beside To (same file system), checks every file against the
// manifest and the database with integrity_check, and only then moves it into
// place. To is never left half-written: on any error it is untouched. An
// existing non-empty To is replaced only with Force; it is renamed to
// To.old-<time> first and removed once the new folder is in place.
func Restore(ctx context.Context, o RestoreOptions) (res *RestoreResult, err error) {
	start := time.Now()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Namer == nil {
		if o.Namer, err = NewNamer(DefaultFilename, time.UTC); err != nil {
			return nil, err
		}
	}
	if o.To == "" && !o.DryRun {
		return nil, errors.New("restore: no target folder")
	}
	var to string
	if o.To != "" {
		if to, err = filepath.Abs(o.To); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		if !o.DryRun && !o.Force {
			if nonEmpty, err := hasEntries(to); err != nil {
				return nil, fmt.Errorf("restore: %w", err)
			} else if nonEmpty {
				return nil, fmt.Errorf("restore: %s is not empty; use --force to replace it (it is kept aside until the restore succeeds)", to)
			}
		}
	}
	if o.DatabaseURL != nil && !o.Force {
		// Refuse early, before any download; Load checks again before loading.
		if names, err := serverdb.Empty(ctx, o.DatabaseURL); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		} else if len(names) > 0 {
			return nil, fmt.Errorf("restore: %w: %s holds %d tables; restore into an empty database, or use --force to replace the dumped tables", serverdb.ErrNotEmpty, o.DatabaseURL, len(names))
		}
	}
	name, err := resolve(ctx, o.Store, o.Namer, o.Name)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	res = &RestoreResult{Name: name, To: to}

	parent := os.TempDir()
	inPlace := o.InPlace
	if to != "" && !o.DryRun {
		parent = filepath.Dir(to)
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		// A mount point (the /data volume of a container) cannot be renamed:
		// unpack inside it and swap its contents instead.
		if isMountPoint(to) {
			inPlace = true
		}
		if inPlace {
			if err := os.MkdirAll(to, 0o700); err != nil {
				return nil, fmt.Errorf("restore: %w", err)
			}
			parent = to
		}
	}
	tmp, err := os.MkdirTemp(parent, ".vwstream-restore-*")
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	var cleanups []func() error
	cleanups = append(cleanups, func() error { return os.RemoveAll(tmp) }) // a no-op once renamed
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			if cerr := cleanups[i](); cerr != nil {
				err = errors.Join(err, fmt.Errorf("restore cleanup: %w", cerr))
			}
		}
	}()

	// Download, decrypt, decompress, unpack, checking hashes as it streams.
	rc, err := o.Store.Get(ctx, Prefix+name, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", name, err)
	}
	defer rc.Close()
	comp, enc := splitExt(name)
	m, err := readSnapshot(rc, comp, enc, o.Keys, extractTo(tmp))
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", name, oneLine(err))
	}
	res.Files, res.CapturedAt, res.Degraded, res.Changed = len(m.Files), m.CapturedAt, m.Degraded, m.Changed
	if len(m.Changed) > 0 {
		o.Logger.Warn("files that changed while the snapshot was taken were restored zero-padded to their listed size", "files", m.Changed)
	}
	for _, f := range m.Files {
		res.Bytes += f.Size
	}

	// Check the database and the attachment references; a server database's
	// dump, checked whole above, is loaded only now.
	switch {
	case m.DB.Server == nil && o.DatabaseURL != nil:
		err = fmt.Errorf("the snapshot holds a SQLite database; a database URL applies to a PostgreSQL or MySQL snapshot")
	case m.DB.Server != nil:
		err = restoreServer(ctx, tmp, m, o, res)
		res.MissingAttachments = len(m.MissingAttachments)
	default:
		err = checkRestored(ctx, tmp, res)
	}
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", name, err)
	}
	o.Logger.Info("snapshot unpacked and checked", "name", name, "files", res.Files, "bytes", res.Bytes, "missing_attachments", res.MissingAttachments)
	if o.DryRun {
		res.Duration = time.Since(start)
		return res, nil
	}
	swap := swapInto
	if inPlace {
		swap = swapContents
	}
	if err := swap(tmp, to, o.Logger); err != nil {
		return nil, fmt.Errorf("restore %s: %w", name, err)
	}
	res.Duration = time.Since(start)
	return res, nil
}

// resolve maps a user's snapshot name to an archive name under snapshots/.
func resolve(ctx context.Context, store objstore.Store, namer *Namer, name string) (string, error) {
	name = strings.TrimPrefix(name, Prefix)
	if name == "" || name == "latest" {
		infos, err := List(ctx, store, namer)
		if err != nil {
			return "", err
		}
		if len(infos) > 0 {
			return infos[0].Name, nil
		}
		// Names made with another BACKUP_FILENAME: fall back to the -latest copy.
		name = LatestBase
	}
	if strings.Contains(name, "/") {
		return "", fmt.Errorf("snapshot name %q: not a name", name)
	}
	var found []string
	for obj, err := range store.List(ctx, Prefix+name) {
		if err != nil {
			return "", fmt.Errorf("find snapshot %s in %s: %w", name, store, err)
		}
		n := strings.TrimPrefix(obj.Key, Prefix)
		if strings.HasSuffix(n, SidecarExt) || Ext(n) == "" {
			continue
		}
		if n == name || strings.TrimSuffix(n, Ext(n)) == name {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no snapshot %q in %s", name, store)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("snapshot %q is ambiguous (%s); give the full name", name, strings.Join(found, ", "))
}

// checkRestored runs integrity_check on the restored database and counts the
// attachment rows whose file is missing or has the wrong size.
func checkRestored(ctx context.Context, dir string, res *RestoreResult) error {
	dbPath := filepath.Join(dir, DBEntry)
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("%w: no %s in the snapshot", ErrDamaged, DBEntry)
	}
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro")
	if err != nil {
		return fmt.Errorf("open restored database: %w", err)
	}
	defer db.Close()
	info, err := inspectDB(ctx, db)
	if err != nil {
		return fmt.Errorf("check restored database: %w", err)
	}
	res.Integrity, res.Tables = info.Integrity, info.Tables
	if info.Integrity != "ok" {
		return fmt.Errorf("%w: restored database fails integrity_check: %s", ErrDamaged, info.Integrity)
	}
	if _, ok := info.Tables["attachments"]; !ok {
		return nil
	}
	missing, err := vault.MissingAttachments(dbPath, filepath.Join(dir, "attachments"))
	if err != nil {
		return err
	}
	res.MissingAttachments = len(missing)
	return nil
}

// swapInto moves the checked folder tmp to to. An existing to is renamed aside
// first and put back if the second rename fails.
func swapInto(tmp, to string, log *slog.Logger) error {
	fi, err := os.Lstat(to)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return rename(tmp, to)
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s exists and is not a folder", to)
	}
	nonEmpty, err := hasEntries(to)
	if err != nil {
		return err
	}
	if !nonEmpty {
		if err := os.Remove(to); err != nil {
			return fmt.Errorf("replace empty %s: %w (a mount point? restore into a folder inside it)", to, err)
		}
		return rename(tmp, to)
	}
	old := fmt.Sprintf("%s.old-%s", to, time.Now().UTC().Format("20060102-150405"))
	if err := os.Rename(to, old); err != nil {
		return fmt.Errorf("move %s aside: %w (a mount point? restore into a folder inside it)", to, err)
	}
	if err := rename(tmp, to); err != nil {
		if rerr := os.Rename(old, to); rerr != nil {
			return fmt.Errorf("%w; and putting the old folder back failed, it is at %s: %v", err, old, rerr)
		}
		return err
	}
	log.Info("restored folder in place; removing the old one", "to", to, "old", old)
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("remove the replaced folder %s: %w", old, err)
	}
	return nil
}

func rename(from, to string) error {
	if err := os.Chmod(from, 0o700); err != nil {
		return err
	}
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("move restored folder into place: %w", err)
	}
	return syncDir(filepath.Dir(to))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// hasEntries reports whether dir exists and holds anything.
func hasEntries(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if err == io.EOF {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// oneLine flattens multi-line library errors so the command prints one line,
// keeping the chain for errors.Is.
func oneLine(err error) error {
	if !strings.ContainsAny(err.Error(), "\r\n") {
		return err
	}
	return &flatError{err: err}
}

type flatError struct{ err error }

func (e *flatError) Error() string { return strings.Join(strings.Fields(e.err.Error()), " ") }
func (e *flatError) Unwrap() error { return e.err }
