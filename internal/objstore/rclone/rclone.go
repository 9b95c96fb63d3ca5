package rclone

import (
	"context"
	"errors"
	"fmt"
	"github.com/vwstream/vwstream/internal/objstore"
	"io"
	"iter"
	"log/slog"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rclone/rclone/fs"
	"github.com/rclone/rclone/fs/config/configmap"
	"github.com/rclone/rclone/fs/config/obscure"
	"github.com/rclone/rclone/fs/operations"
	"github.com/rclone/rclone/fs/walk"

	// The backends vwstream supports for extra snapshot destinations; every
	// other rclone backend stays out of the binary.
	_ "github.com/rclone/rclone/backend/azureblob"
	_ "github.com/rclone/rclone/backend/b2"
	_ "github.com/rclone/rclone/backend/drive"
	_ "github.com/rclone/rclone/backend/dropbox"
	_ "github.com/rclone/rclone/backend/local"
	_ "github.com/rclone/rclone/backend/onedrive"
	_ "github.com/rclone/rclone/backend/s3"
	_ "github.com/rclone/rclone/backend/sftp"
	_ "github.com/rclone/rclone/backend/webdav"
)

var (
	rcloneLogOnce sync.Once
	rcloneNewFs   sync.Mutex // backends' NewFs touch rclone's global state
)

// Options configure New.
type Options struct {
	// Remotes are the RCLONE_CONFIG_<NAME>_<KEY> settings: remote name (lower
	// case) -> option (lower case) -> value. Password options may be given in
	// plain text; they are obscured for rclone as its configuration expects.
	Remotes map[string]map[string]string
	// LowLevelRetries bounds rclone's retries of one operation; 0 means 3.
	LowLevelRetries int
	Logger          *slog.Logger
}

// Rclone is an objstore.Store on an rclone remote ("name:path"). It is used for extra
// snapshot destinations: the conditional puts of objstore.PutOptions are emulated with
// a Stat before the upload, serialised within this process but not atomic
// against other writers.
type Rclone struct {
	f      fs.Fs
	remote string // "name:path" for messages; holds no credential
	ctxCfg func(context.Context) context.Context
	condMu sync.Mutex // serialises conditional puts
}

var _ objstore.Store = (*Rclone)(nil)

// New opens remote, "name:path", where name is a remote of opts.Remotes.
// It does not upload anything; a backend that needs a connection to start
// (sftp) reports an unreachable server here.
func New(ctx context.Context, remote string, opts Options) (*Rclone, error) {
	name, root, ok := strings.Cut(remote, ":")
	if !ok || name == "" {
		return nil, fmt.Errorf("rclone remote %q: want NAME:path", remote)
	}
	settings, ok := opts.Remotes[strings.ToLower(name)]
	if !ok || settings["type"] == "" {
		return nil, fmt.Errorf("rclone remote %q: RCLONE_CONFIG_%s_TYPE is not set", remote, strings.ToUpper(name))
	}
	info, err := fs.Find(settings["type"])
	if err != nil {
		return nil, fmt.Errorf("rclone remote %s: backend %q is not built into vwstream (s3, local, drive, sftp, b2, webdav, azureblob, onedrive, dropbox)", name, settings["type"])
	}
	simple := configmap.Simple{}
	for k, v := range settings {
		if opt := findOption(info.Options, k); opt != nil && opt.IsPassword {
			v = obscureIfPlain(v)
		}
		simple[k] = v
	}
	if opts.Logger != nil {
		// rclone logs through one process-wide logger; the first store with
		// a Logger routes it into ours instead of rclone's stderr format.
		rcloneLogOnce.Do(func() { fs.SetLogger(opts.Logger.With("component", "rclone").Handler()) })
	}
	retries := opts.LowLevelRetries
	if retries == 0 {
		retries = 3
	}
	ctxCfg := func(ctx context.Context) context.Context {
		ctx, ci := fs.AddConfig(ctx)
		ci.LowLevelRetries = retries
		return ctx
	}
	ctx = ctxCfg(ctx)
	// No config name: the settings come from the configuration alone, never
	// from an rclone.conf file or RCLONE_CONFIG_* read behind its back (and
	// rclone's lazy config-file load is not safe for concurrent first use).
	m := fs.ConfigMap(info.Prefix, info.Options, "", simple)
	rcloneNewFs.Lock()
	f, err := info.NewFs(ctx, name, root, m)
	rcloneNewFs.Unlock()
	if err != nil && !errors.Is(err, fs.ErrorIsFile) {
		return nil, fmt.Errorf("rclone remote %s: %w", remote, err)
	}
	return &Rclone{f: f, remote: name + ":" + root, ctxCfg: ctxCfg}, nil
}

func findOption(opts fs.Options, name string) *fs.Option {
	for i := range opts {
		if strings.EqualFold(opts[i].Name, name) {
			return &opts[i]
		}
	}
	return nil
}

// obscureIfPlain obscures a password unless it already is one: rclone's own
// RCLONE_CONFIG_* convention wants obscured values, users write plain ones.
// A value that reveals cleanly is taken as already obscured.
func obscureIfPlain(v string) string {
	if v == "" {
		return v
	}
	if _, err := obscure.Reveal(v); err == nil {
		return v
	}
	o, err := obscure.Obscure(v)
	if err != nil {
		return v
	}
	return o
}

// String names the remote as "rclone name:path".
func (r *Rclone) String() string { return "rclone " + r.remote }

func (r *Rclone) notFound(op, key string, err error) error {
	if errors.Is(err, fs.ErrorObjectNotFound) || errors.Is(err, fs.ErrorDirNotFound) || errors.Is(err, fs.ErrorNotAFile) {
		return fmt.Errorf("%s %s: %w", op, key, objstore.ErrNotFound)
	}
	return fmt.Errorf("%s %s on %s: %w", op, key, r.remote, err)
}

// Put uploads r to key; see objstore.Store.Put. rclone checks the stored hash against
// the one it computed while streaming where the backend has one.
func (r *Rclone) Put(ctx context.Context, key string, rd io.Reader, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	if err := objstore.CheckKey(key); err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("put: %w", err)
	}
	ctx = r.ctxCfg(ctx)
	if opts.IfNoneMatch || opts.IfMatch != "" {
		// Emulated: atomic between the Puts of this process only.
		r.condMu.Lock()
		defer r.condMu.Unlock()
		cur, err := r.Stat(ctx, key)
		switch {
		case err == nil && opts.IfNoneMatch:
			return objstore.ObjectInfo{}, fmt.Errorf("put %s: %w", key, objstore.ErrPrecondition)
		case err == nil && cur.ETag != opts.IfMatch:
			return objstore.ObjectInfo{}, fmt.Errorf("put %s: %w", key, objstore.ErrPrecondition)
		case errors.Is(err, objstore.ErrNotFound) && opts.IfMatch != "":
			return objstore.ObjectInfo{}, fmt.Errorf("put %s: %w", key, objstore.ErrPrecondition)
		case err != nil && !errors.Is(err, objstore.ErrNotFound):
			return objstore.ObjectInfo{}, err
		}
	}
	obj, err := operations.Rcat(ctx, r.f, key, io.NopCloser(rd), time.Now(), nil)
	if err != nil {
		if strings.Contains(err.Error(), "corrupted on transfer") {
			return objstore.ObjectInfo{}, fmt.Errorf("put %s on %s: %w: %v", key, r.remote, objstore.ErrChecksum, err)
		}
		return objstore.ObjectInfo{}, fmt.Errorf("put %s on %s: %w", key, r.remote, err)
	}
	return r.info(ctx, obj), nil
}

// info describes obj. The ETag is made of size and modification time: a
// content hash would make listings read whole files on backends without
// stored hashes (local, sftp), and rclone already checked the content hash
// when it uploaded.
func (r *Rclone) info(ctx context.Context, obj fs.Object) objstore.ObjectInfo {
	mt := obj.ModTime(ctx)
	return objstore.ObjectInfo{Key: obj.Remote(), Size: obj.Size(), ModTime: mt,
		ETag: fmt.Sprintf("%x-%x", obj.Size(), mt.UnixNano())}
}

// Get opens key from offset; see objstore.Store.Get.
func (r *Rclone) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := objstore.CheckKey(key); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	ctx = r.ctxCfg(ctx)
	obj, err := r.f.NewObject(ctx, key)
	if err != nil {
		return nil, r.notFound("get", key, err)
	}
	var options []fs.OpenOption
	if offset > 0 || length >= 0 {
		end := int64(-1)
		if length >= 0 {
			end = offset + length - 1
		}
		options = append(options, &fs.RangeOption{Start: offset, End: end})
	}
	rc, err := obj.Open(ctx, options...)
	if err != nil {
		return nil, r.notFound("get", key, err)
	}
	return rc, nil
}

// Stat describes key; see objstore.Store.Stat.
func (r *Rclone) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	if err := objstore.CheckKey(key); err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("stat: %w", err)
	}
	ctx = r.ctxCfg(ctx)
	obj, err := r.f.NewObject(ctx, key)
	if err != nil {
		return objstore.ObjectInfo{}, r.notFound("stat", key, err)
	}
	return r.info(ctx, obj), nil
}

// List yields the objects whose key starts with prefix, in key order. It
// lists the deepest folder the prefix names, so prefixes should end at a
// folder boundary or within a name (snapshots/vault...).
func (r *Rclone) List(ctx context.Context, prefix string) iter.Seq2[objstore.ObjectInfo, error] {
	return func(yield func(objstore.ObjectInfo, error) bool) {
		ctx := r.ctxCfg(ctx)
		dir := ""
		if i := strings.LastIndex(prefix, "/"); i >= 0 {
			dir = prefix[:i]
		}
		var out []objstore.ObjectInfo
		err := walk.ListR(ctx, r.f, dir, true, -1, walk.ListObjects, func(entries fs.DirEntries) error {
			for _, e := range entries {
				obj, ok := e.(fs.Object)
				if !ok || !strings.HasPrefix(obj.Remote(), prefix) {
					continue
				}
				out = append(out, r.info(ctx, obj))
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrorDirNotFound) {
			yield(objstore.ObjectInfo{}, fmt.Errorf("list %s on %s: %w", prefix, r.remote, err))
			return
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
		for _, o := range out {
			if !yield(o, nil) {
				return
			}
		}
	}
}

// Delete removes keys; missing ones are not an error.
func (r *Rclone) Delete(ctx context.Context, keys ...string) error {
	ctx = r.ctxCfg(ctx)
	var errs []error
	for _, key := range keys {
		if err := objstore.CheckKey(key); err != nil {
			errs = append(errs, fmt.Errorf("delete: %w", err))
			continue
		}
		obj, err := r.f.NewObject(ctx, key)
		if err != nil {
			if errors.Is(r.notFound("delete", key, err), objstore.ErrNotFound) {
				continue
			}
			errs = append(errs, r.notFound("delete", key, err))
			continue
		}
		if err := obj.Remove(ctx); err != nil {
			errs = append(errs, fmt.Errorf("delete %s on %s: %w", key, r.remote, err))
		}
	}
	return errors.Join(errs...)
}

// Copy duplicates src to dst, server-side where the backend can.
func (r *Rclone) Copy(ctx context.Context, src, dst string) (objstore.ObjectInfo, error) {
	if err := objstore.CheckKey(src); err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("copy: %w", err)
	}
	if err := objstore.CheckKey(dst); err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("copy: %w", err)
	}
	ctx = r.ctxCfg(ctx)
	obj, err := r.f.NewObject(ctx, src)
	if err != nil {
		return objstore.ObjectInfo{}, r.notFound("copy", src, err)
	}
	existing, _ := r.f.NewObject(ctx, dst)
	out, err := operations.Copy(ctx, r.f, existing, path.Clean(dst), obj)
	if err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("copy %s to %s on %s: %w", src, dst, r.remote, err)
	}
	if out == nil {
		return r.Stat(ctx, dst)
	}
	return r.info(ctx, out), nil
}
