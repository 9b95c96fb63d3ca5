package objstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"iter"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/vwstream/vwstream/internal/vault"
	"golang.org/x/sys/unix"
)

// etagXattr caches an object's SHA-256 on its file, so Stat and List need not
// read whole files; where the file system has no user xattrs it is recomputed.
const etagXattr = "user.vwstream.sha256"

// Local is a Store over a folder: each key is a file under the root. Writes go
// to a temporary file in the same directory and are renamed into place after
// fsync, so a reader or a crash never sees half an object.
type Local struct {
	root string
	mu   sync.Mutex // serialises replacing renames in this process; flock covers others
}

var _ Store = (*Local)(nil)

// NewLocal opens (creating if needed) the folder root as a Store.
func NewLocal(root string) (*Local, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("local store %q: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("local store: %w", err)
	}
	return &Local{root: abs}, nil
}

// Root returns the absolute path of the folder.
func (l *Local) Root() string { return l.root }

// String names the store as a file URL.
func (l *Local) String() string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(l.root)}).String()
}

func (l *Local) path(key string) string {
	return filepath.Join(l.root, filepath.FromSlash(key))
}

// Put writes r to key atomically; see Store.Put.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, opts PutOptions) (ObjectInfo, error) {
	if err := CheckKey(key); err != nil {
		return ObjectInfo{}, fmt.Errorf("put: %w", err)
	}
	tmp, sum, err := l.writeTemp(ctx, key, r)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	defer os.Remove(tmp) // no-op once renamed; after a link it drops the extra name
	if err := l.commit(tmp, key, sum, opts); err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	return l.Stat(ctx, key)
}

// writeTemp streams r into a fsynced temporary file beside key's final place.
func (l *Local) writeTemp(ctx context.Context, key string, r io.Reader) (tmp, sum string, err error) {
	dir := filepath.Dir(l.path(key))
	var f *os.File
	// A concurrent Delete may remove the freshly created directory; try again.
	for range 5 {
		if err = l.mkdirDurable(dir); err != nil {
			return "", "", err
		}
		if f, err = os.CreateTemp(dir, tempPrefix+"*"); !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return "", "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	if _, err = io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r}); err != nil {
		return "", "", err
	}
	sum = hex.EncodeToString(h.Sum(nil))
	// Best effort: without xattrs the ETag is recomputed on demand.
	_ = unix.Fsetxattr(int(f.Fd()), etagXattr, []byte(sum), 0)
	if err = f.Sync(); err != nil {
		return "", "", err
	}
	if err = f.Close(); err != nil {
		return "", "", err
	}
	return f.Name(), sum, nil
}

// commit moves tmp to key under the conditions in opts.
func (l *Local) commit(tmp, key, sum string, opts PutOptions) error {
	final := l.path(key)
	if opts.IfNoneMatch {
		// link(2) fails when final exists: an atomic create-if-absent.
		if err := os.Link(tmp, final); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return ErrPrecondition
			}
			return err
		}
		return vault.SyncDir(filepath.Dir(final))
	}
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if opts.IfMatch != "" {
		cur, err := fileETag(final)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && cur != strings.Trim(opts.IfMatch, `"`)) {
			return ErrPrecondition
		} else if err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return vault.SyncDir(filepath.Dir(final))
}

// lock takes the process mutex and an exclusive flock on root/.lock, so a
// compare-and-swap is atomic against other goroutines and other processes.
func (l *Local) lock() (func(), error) {
	l.mu.Lock()
	f, err := os.OpenFile(filepath.Join(l.root, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		l.mu.Unlock()
		return nil, fmt.Errorf("lock: %w", err)
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
		l.mu.Unlock()
	}, nil
}

// Get opens key at offset; see Store.Get.
func (l *Local) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	if offset < 0 {
		return nil, fmt.Errorf("get %s: negative offset %d", key, offset)
	}
	f, err := os.Open(l.path(key))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, notFound(err))
	}
	if fi, err := f.Stat(); err != nil {
		f.Close()
		return nil, fmt.Errorf("get %s: %w", key, err)
	} else if fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if length < 0 {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, length), f}, nil
}

// Stat describes key; see Store.Stat.
func (l *Local) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := CheckKey(key); err != nil {
		return ObjectInfo{}, fmt.Errorf("stat: %w", err)
	}
	info, err := l.stat(key)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", key, err)
	}
	return info, nil
}

func (l *Local) stat(key string) (ObjectInfo, error) {
	p := l.path(key)
	fi, err := os.Stat(p)
	if err != nil {
		return ObjectInfo{}, notFound(err)
	}
	if !fi.Mode().IsRegular() {
		return ObjectInfo{}, ErrNotFound
	}
	etag, err := fileETag(p)
	if err != nil {
		return ObjectInfo{}, notFound(err)
	}
	return ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime(), ETag: etag}, nil
}

// List yields objects under prefix in lexical key order; see Store.List.
func (l *Local) List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		if err := checkPrefix(prefix); err != nil {
			yield(ObjectInfo{}, fmt.Errorf("list: %w", err))
			return
		}
		// Start in the deepest directory the prefix names completely.
		dir := ""
		if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
			dir = prefix[:i]
		}
		if _, err := l.walk(ctx, dir, prefix, yield); err != nil {
			yield(ObjectInfo{}, fmt.Errorf("list %q: %w", prefix, err))
		}
	}
}

// walk visits dir (a key prefix without trailing slash, "" for the root) in key
// order. Entries are sorted with a "/" appended to directory names, which
// makes a depth-first walk produce keys in plain byte order ("a-b" < "a/c").
func (l *Local) walk(ctx context.Context, dir, prefix string, yield func(ObjectInfo, error) bool) (bool, error) {
	entries, err := os.ReadDir(l.path(dir))
	if dir == "" {
		entries, err = os.ReadDir(l.root)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	type entry struct {
		name  string // key segment, with "/" for directories
		isDir bool
	}
	list := make([]entry, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tempPrefix) || (dir == "" && name == lockName) {
			continue
		}
		if e.IsDir() {
			list = append(list, entry{name + "/", true})
		} else if e.Type().IsRegular() {
			list = append(list, entry{name, false})
		}
	}
	slices.SortFunc(list, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	for _, e := range list {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		key := path.Join(dir, strings.TrimSuffix(e.name, "/"))
		if e.isDir {
			// Descend only where keys below can still match the prefix.
			if !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				continue
			}
			if ok, err := l.walk(ctx, key, prefix, yield); !ok || err != nil {
				return ok, err
			}
			continue
		}
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		info, err := l.stat(key)
		if errors.Is(err, ErrNotFound) {
			continue // deleted while listing
		} else if err != nil {
			return false, err
		}
		if !yield(info, nil) {
			return false, nil
		}
	}
	return true, nil
}

// Delete removes keys and then any directories they leave empty.
func (l *Local) Delete(ctx context.Context, keys ...string) error {
	for _, key := range keys {
		if err := CheckKey(key); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
	}
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		p := l.path(key)
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", key, err)
		}
		// Removing a non-empty directory fails, which is where we stop.
		for dir := filepath.Dir(p); dir != l.root && strings.HasPrefix(dir, l.root); dir = filepath.Dir(dir) {
			if os.Remove(dir) != nil {
				break
			}
		}
	}
	return nil
}

// Copy duplicates src to dst atomically.
func (l *Local) Copy(ctx context.Context, src, dst string) (ObjectInfo, error) {
	rc, err := l.Get(ctx, src, 0, -1)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("copy: %w", err)
	}
	defer rc.Close()
	info, err := l.Put(ctx, dst, rc, PutOptions{})
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("copy %s: %w", src, err)
	}
	return info, nil
}

// fileETag reads the cached SHA-256 of a file or computes it.
func fileETag(p string) (string, error) {
	buf := make([]byte, 2*sha256.Size)
	if n, err := unix.Getxattr(p, etagXattr, buf); err == nil && n == len(buf) {
		return string(buf), nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var h hash.Hash = sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// mkdirDurable creates dir and any missing parents below the root, and fsyncs
// the folder holding each new one: a new folder's entry is only durable once
// its parent is synced, and an object whose folder vanished in a power loss is
// lost even though its Put returned.
func (l *Local) mkdirDurable(dir string) error {
	var created []string
	for d := dir; d != l.root && len(d) > len(l.root); d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		created = append(created, d)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range created {
		if err := vault.SyncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return ErrNotFound
	}
	return err
}

// ctxReader stops a copy when ctx ends, so a cancelled Put does not keep
// draining a slow or endless reader.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
