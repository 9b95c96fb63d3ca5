package filesync

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchAll watches every include: the parent of each (to see a folder or file
// appear or vanish) and every folder inside folder includes. inotify watches are
// per folder, so folders created later are added as their Create events arrive.
func (s *Syncer) watchAll() {
	seen := map[string]bool{}
	for _, in := range s.paths.includes {
		if parent := filepath.Dir(in.Path); !seen[parent] {
			seen[parent] = true
			if err := s.watcher.Add(parent); err != nil {
				s.opts.Logger.Warn("cannot watch folder; the periodic reconcile still covers it", "path", parent, "error", err)
			}
		}
		if in.Dir {
			s.addTree(in.Path, false)
		}
	}
}

// addTree watches root and the synced folders below it. With markFiles, files
// already inside are marked changed: they may have been written before the watch.
func (s *Syncer) addTree(root string, markFiles bool) {
	now := time.Now()
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				s.opts.Logger.Warn("cannot watch folder", "path", path, "error", err)
			}
			return nil
		}
		if d.IsDir() {
			if !s.paths.inDirInclude(path) {
				return filepath.SkipDir
			}
			if err := s.watcher.Add(path); err != nil {
				s.opts.Logger.Warn("cannot watch folder; the periodic reconcile still covers it", "path", path, "error", err)
			}
			return nil
		}
		if markFiles && d.Type().IsRegular() {
			if key, _, ok := s.paths.keyOf(path); ok {
				s.markDirty(key, path, now)
			}
		}
		return nil
	})
}

func (s *Syncer) handleEvent(ev fsnotify.Event) {
	abs := filepath.Clean(ev.Name)
	now := time.Now()
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Lstat(abs); err == nil && fi.IsDir() {
			if s.paths.inDirInclude(abs) {
				s.addTree(abs, true)
			}
			return
		}
	}
	if s.paths.isRoot(abs) >= 0 && (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) {
		// An included folder vanished: let the guard see it soon.
		s.requestReconcile(now.Add(s.opts.Debounce))
		return
	}
	key, _, ok := s.paths.keyOf(abs)
	if !ok {
		return
	}
	s.markDirty(key, abs, now)
}
