package filesync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
)

// localFile is a file found by the local walk.
type localFile struct {
	abs   string
	size  int64
	mtime int64
	inc   int
}

// Reconcile runs one full reconcile now and waits for it: every local file is
// compared with the manifest and one listing of files/, out-of-date files are
// queued for upload, and due deletions are mirrored unless the guard refuses.
func (s *Syncer) Reconcile(ctx context.Context) error {
	s.mu.Lock()
	for s.reconciling {
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		s.mu.Lock()
	}
	s.reconciling = true
	s.nextFull = time.Now().Add(s.opts.ReconcileInterval)
	s.mu.Unlock()
	return s.reconcile(ctx)
}

// reconcile is Reconcile's body; the caller has set s.reconciling.
func (s *Syncer) reconcile(ctx context.Context) error {
	defer func() {
		s.mu.Lock()
		s.reconciling = false
		s.mu.Unlock()
	}()
	start := time.Now()
	s.mu.Lock()
	s.recentPuts = map[string]objstore.ObjectInfo{}
	s.mu.Unlock()

	// The local walk and the listing overlap: one reads the disk, the other
	// waits for the store.
	var (
		remote  map[string]objstore.ObjectInfo
		listErr error
		listed  = make(chan struct{})
	)
	go func() {
		defer close(listed)
		remote, listErr = listAll(ctx, s.opts.Store, layout.Files)
	}()
	local, incErrs := s.walk()
	<-listed
	if ctx.Err() != nil {
		return ctx.Err()
	}

	now := time.Now()
	s.mu.Lock()
	if listErr == nil {
		maps.Copy(remote, s.recentPuts)
		s.remote = remote
	}
	s.recentPuts = nil
	queued := 0
	for key, lf := range local {
		delete(s.man.Missing, key)
		if s.inflight[key] {
			continue
		}
		e, ok := s.man.Files[key]
		same := ok && e.Size == lf.size && e.MTime == lf.mtime
		if same && listErr != nil {
			continue
		}
		if r, stored := remote[key]; same && stored && r.ETag == e.ETag && r.Size == e.Size {
			continue
		}
		if s.dirty[key] == nil {
			s.dirty[key] = &pending{abs: lf.abs}
			queued++
		}
	}
	s.scanned = true
	var due []string
	var refused []string
	if listErr == nil {
		due, refused = s.deletionsLocked(local, remote, incErrs, now)
	}
	s.dispatchLocked(now, false) // the uploads start now, not at the next tick
	s.manDirty = true
	s.mu.Unlock()

	trashErr := s.trash(ctx, due)
	purgeErr := s.purgeTrash(ctx, now)

	s.mu.Lock()
	var alarm error
	if len(refused) > 0 {
		alarm = fmt.Errorf("%w: %s", ErrMassDeletion, strings.Join(refused, "; "))
	}
	notify := s.setAlarmLocked(alarm)
	err := errors.Join(listErr, trashErr, purgeErr)
	s.setErrLocked(opReconcile, err)
	if alarm != nil { // reported as Status.Alarm; kept as the last error too
		s.status.LastError, s.status.LastErrorAt = alarm.Error(), time.Now()
	}
	nRemote := len(remote) // s.remote from now on: uploads add to it
	s.mu.Unlock()

	// The manifest is on disk before the reconcile reports itself done.
	s.save(time.Now())
	s.mu.Lock()
	if listErr == nil {
		s.status.LastReconcile = time.Now()
	}
	if len(s.errs) == 0 && len(s.dirty) == 0 && len(s.inflight) == 0 && s.status.LastSync.Before(start) {
		s.status.LastSync = start
	}
	s.mu.Unlock()

	if notify && s.opts.OnAlarm != nil {
		s.opts.OnAlarm(alarm)
	}
	s.opts.Logger.Debug("file sync reconcile", "local", len(local), "remote", nRemote, "queued", queued,
		"trashed", len(due), "took", time.Since(start), "error", err)
	if alarm != nil {
		s.opts.Logger.Error("file sync refuses remote deletions", "error", alarm)
	}
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	return nil
}

// deletionsLocked finds remote files missing locally, applies the mass-deletion
// guard per include and returns the keys whose grace period is over, and why
// the guard refused the others.
//
// The guard refuses every deletion in an include when its folder is missing or
// could not be read completely, or when more than MassDeleteMin files and more
// than MassDeleteRatio of its remote files are missing at once: Vaultwarden
// deletes attachments one cipher at a time, so losing most of a folder at once
// means a broken volume or a failed restore, not users deleting things.
func (s *Syncer) deletionsLocked(local map[string]localFile, remote map[string]objstore.ObjectInfo, incErrs []error, now time.Time) (due, refused []string) {
	missing := map[int][]string{}
	count := map[int]int{}
	for key := range remote {
		_, inc, ok := s.paths.localOf(key)
		if !ok {
			continue // not ours to delete: an include switched off, another tool's object
		}
		count[inc]++
		if _, here := local[key]; here {
			continue
		}
		missing[inc] = append(missing[inc], key)
		if s.man.Missing[key].IsZero() {
			s.man.Missing[key] = now
		}
	}
	for key := range s.man.Missing {
		if _, ok := remote[key]; !ok {
			delete(s.man.Missing, key)
		}
	}
	for key := range s.man.Files {
		_, here := local[key]
		_, stored := remote[key]
		if !here && !stored && !s.inflight[key] {
			delete(s.man.Files, key)
		}
	}
	for _, inc := range slices.Sorted(maps.Keys(missing)) {
		keys := missing[inc]
		in := s.paths.includes[inc]
		if incErrs[inc] != nil {
			refused = append(refused, fmt.Sprintf("%s: %v (%d remote files kept)", in.Name, incErrs[inc], len(keys)))
			continue
		}
		if len(keys) > s.opts.MassDeleteMin && float64(len(keys)) > s.opts.MassDeleteRatio*float64(count[inc]) {
			refused = append(refused, fmt.Sprintf("%s: %d of its %d files vanished at once (kept)", in.Name, len(keys), count[inc]))
			continue
		}
		for _, key := range keys {
			if s.inflight[key] {
				continue
			}
			if at := s.man.Missing[key].Add(s.opts.DeleteGrace); now.Before(at) {
				s.requestReconcileLocked(at)
				continue
			}
			s.inflight[key] = true // keeps uploads of a reappearing file out until the trash move ends
			due = append(due, key)
		}
	}
	return due, refused
}

// setAlarmLocked updates the alarm; it reports whether OnAlarm should be called
// (the alarm is new or its reason changed).
func (s *Syncer) setAlarmLocked(err error) bool {
	if err == nil {
		if s.status.Alarm {
			s.opts.Logger.Info("file sync deletion guard cleared")
		}
		s.status.Alarm, s.status.AlarmReason = false, ""
		return false
	}
	notify := !s.status.Alarm || s.status.AlarmReason != err.Error()
	s.status.Alarm, s.status.AlarmReason = true, err.Error()
	return notify
}

// walk lists the local files of every include. incErrs[i] is set when include
// i is a folder that is missing or could not be read completely: its remote
// files must then not be taken for deleted.
func (s *Syncer) walk() (map[string]localFile, []error) {
	local := map[string]localFile{}
	incErrs := make([]error, len(s.paths.includes))
	add := func(abs string, fi fs.FileInfo) {
		if !fi.Mode().IsRegular() {
			return
		}
		if key, inc, ok := s.paths.keyOf(abs); ok {
			local[key] = localFile{abs: abs, size: fi.Size(), mtime: fi.ModTime().UnixNano(), inc: inc}
		}
	}
	for i, in := range s.paths.includes {
		fi, err := os.Stat(in.Path)
		if !in.Dir {
			switch {
			case err == nil:
				add(in.Path, fi)
			case !errors.Is(err, fs.ErrNotExist):
				// Unreadable is not deleted: keep the remote copy.
				incErrs[i] = fmt.Errorf("%s: %w", in.Path, err)
			default:
				// A missing file is a deletion only when its folder is there
				// (an unmounted data volume loses config.json and rsa_key too).
				if _, derr := os.Stat(filepath.Dir(in.Path)); derr != nil {
					incErrs[i] = fmt.Errorf("folder of %s: %w", in.Path, derr)
				}
			}
			continue
		}
		if li, lerr := os.Lstat(in.Path); lerr == nil && li.Mode()&fs.ModeSymlink != 0 {
			// Became a link after start: the walk would see nothing inside.
			incErrs[i] = fmt.Errorf("folder %s is a symbolic link; restart vwstream to follow it", in.Path)
			continue
		}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			incErrs[i] = fmt.Errorf("folder %s is missing", in.Path)
			continue
		case err != nil:
			incErrs[i] = fmt.Errorf("folder %s: %w", in.Path, err)
			continue
		case !fi.IsDir():
			incErrs[i] = fmt.Errorf("%s is not a folder", in.Path)
			continue
		}
		_ = filepath.WalkDir(in.Path, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				incErrs[i] = errors.Join(incErrs[i], fmt.Errorf("read %s: %w", path, err))
				return nil
			}
			if d.IsDir() {
				if path != in.Path && !s.paths.inDirInclude(path) {
					return filepath.SkipDir
				}
				return nil
			}
			fi, err := d.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				incErrs[i] = errors.Join(incErrs[i], fmt.Errorf("stat %s: %w", path, err))
				return nil
			}
			add(path, fi)
			return nil
		})
	}
	return local, incErrs
}

// listAll reads a whole listing; any error fails it (never a partial listing).
func listAll(ctx context.Context, store objstore.Store, prefix string) (map[string]objstore.ObjectInfo, error) {
	out := map[string]objstore.ObjectInfo{}
	for info, err := range store.List(ctx, prefix) {
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		out[info.Key] = info
	}
	return out, nil
}

// trash moves each key to trash/files/<path>@<unix seconds> (server-side copy,
// then delete) unless its file came back meanwhile.
func (s *Syncer) trash(ctx context.Context, keys []string) error {
	var errs []error
	for _, key := range keys {
		err := s.trashOne(ctx, key)
		s.mu.Lock()
		delete(s.inflight, key)
		if err == nil {
			delete(s.man.Files, key)
			delete(s.man.Missing, key)
			delete(s.remote, key)
			s.manDirty = true
		}
		s.mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Syncer) trashOne(ctx context.Context, key string) error {
	abs, _, _ := s.paths.localOf(key)
	if _, err := os.Lstat(abs); !errors.Is(err, fs.ErrNotExist) {
		s.markDirty(key, abs, time.Time{})
		return nil
	}
	dst := layout.TrashFiles + strings.TrimPrefix(key, layout.Files) + "@" + strconv.FormatInt(time.Now().Unix(), 10)
	if _, err := s.opts.Store.Copy(ctx, key, dst); err != nil {
		if errors.Is(err, objstore.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("trash %s: %w", key, err)
	}
	if err := s.opts.Store.Delete(ctx, key); err != nil {
		return fmt.Errorf("trash %s: %w", key, err)
	}
	s.mu.Lock()
	s.status.FilesTrashed++
	s.mu.Unlock()
	s.opts.Logger.Info("file deleted locally, moved to trash", "key", key, "trash", dst)
	return nil
}

// purgeTrash deletes trash older than TrashRetention, at most every
// TrashPurgeEvery, so most reconciles list files/ only.
func (s *Syncer) purgeTrash(ctx context.Context, now time.Time) error {
	s.mu.Lock()
	skip := s.opts.TrashRetention < 0 || now.Sub(s.man.LastPurge) < s.opts.TrashPurgeEvery
	s.mu.Unlock()
	if skip {
		return nil
	}
	cutoff := now.Add(-s.opts.TrashRetention).Unix()
	var expired []string
	for info, err := range s.opts.Store.List(ctx, layout.TrashFiles) {
		if err != nil {
			return fmt.Errorf("purge trash: %w", err)
		}
		i := strings.LastIndexByte(info.Key, '@')
		if i < 0 {
			continue
		}
		if t, err := strconv.ParseInt(info.Key[i+1:], 10, 64); err == nil && t < cutoff {
			expired = append(expired, info.Key)
		}
	}
	if len(expired) > 0 {
		if err := s.opts.Store.Delete(ctx, expired...); err != nil {
			return fmt.Errorf("purge trash: %w", err)
		}
		s.opts.Logger.Info("purged expired trash", "objects", len(expired))
	}
	s.mu.Lock()
	s.man.LastPurge = now
	s.manDirty = true
	s.mu.Unlock()
	return nil
}
