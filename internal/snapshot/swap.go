package snapshot

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vwstream/vwstream/internal/restore"
)

// isMountPoint reports whether dir is on another device than its parent.
func isMountPoint(dir string) bool {
	var a, b syscall.Stat_t
	if syscall.Stat(dir, &a) != nil || syscall.Stat(filepath.Dir(dir), &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}

// swapContents moves the checked restore in tmp (a folder inside to) into to,
// entry by entry: the old entries go to to/.vwstream-old-<time> first and are
// put back if moving the new ones fails; they are removed after success. The
// renames stay on one file system, so each is atomic, though the whole swap
// is not: a crash in between leaves both sets inside to, named.
func swapContents(tmp, to string, log *slog.Logger) error {
	old := filepath.Join(to, ".vwstream-old-"+time.Now().UTC().Format("20060102-150405"))
	if err := os.Mkdir(old, 0o700); err != nil {
		return fmt.Errorf("replace contents of %s: %w", to, err)
	}
	entries, err := os.ReadDir(to)
	if err != nil {
		return err
	}
	var moved []string
	undo := func(cause error) error {
		var errs []error
		for _, n := range moved {
			if err := os.Rename(filepath.Join(old, n), filepath.Join(to, n)); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w; putting the old files back failed, they are in %s: %v", cause, old, errors.Join(errs...))
		}
		_ = os.Remove(old)
		return cause
	}
	for _, e := range entries {
		p := filepath.Join(to, e.Name())
		if p == tmp || p == old || e.Name() == restore.LockFile { // the lock stays with the volume
			continue
		}
		if err := os.Rename(p, filepath.Join(old, e.Name())); err != nil {
			return undo(fmt.Errorf("move %s aside: %w", e.Name(), err))
		}
		moved = append(moved, e.Name())
	}
	fresh, err := os.ReadDir(tmp)
	if err != nil {
		return undo(err)
	}
	var placed []string
	for _, e := range fresh {
		if err := os.Rename(filepath.Join(tmp, e.Name()), filepath.Join(to, e.Name())); err != nil {
			for _, n := range placed {
				_ = os.Rename(filepath.Join(to, n), filepath.Join(tmp, n))
			}
			return undo(fmt.Errorf("move restored %s into place: %w", e.Name(), err))
		}
		placed = append(placed, e.Name())
	}
	if err := syncDir(to); err != nil {
		return err
	}
	log.Info("restored files in place; removing the old ones", "to", to, "old", old)
	var errs []error
	if err := os.RemoveAll(old); err != nil {
		errs = append(errs, fmt.Errorf("remove the replaced files in %s: %w", old, err))
	}
	if err := os.Remove(tmp); err != nil && !strings.Contains(err.Error(), "no such file") {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
