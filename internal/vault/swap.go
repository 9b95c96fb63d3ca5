package vault

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Staging is a folder inside a data folder where a restore builds the new data.
// Living inside the data folder keeps every later move a rename on one file
// system, even when the data folder is a mount point that cannot be renamed.
// Until SwapIn commits it, a crash leaves nothing but the staging folder, which
// Recover removes: it is a copy (often decrypted) of what the backup holds.
type Staging struct {
	dir string // the data folder
	id  string
}

// NewStaging creates an empty staging folder in dir (created when missing).
func NewStaging(dir string) (*Staging, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create staging folder: %w", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	s := &Staging{dir: dir, id: hex.EncodeToString(b[:])}
	if err := os.Mkdir(s.Path(), 0o700); err != nil {
		return nil, fmt.Errorf("create staging folder: %w", err)
	}
	return s, nil
}

// Path is the staging folder; the restore writes the new entries into it.
func (s *Staging) Path() string { return filepath.Join(s.dir, stagePrefix+s.id) }

// Remove deletes the staging folder and what it holds (nothing once swapped in).
func (s *Staging) Remove() error {
	err := errors.Join(os.RemoveAll(s.Path()), os.RemoveAll(s.swapPath()))
	if err != nil {
		return fmt.Errorf("remove staging folder: %w", err)
	}
	return nil
}

func (s *Staging) swapPath() string  { return filepath.Join(s.dir, swapPrefix+s.id) }
func (s *Staging) asidePath() string { return filepath.Join(s.dir, asidePrefix+s.id) }

// testHookMoved runs after each rename of a swap; tests stop the swap there
// as a crash would.
var testHookMoved = func() {}

// planFile, inside a committed swap folder, lists the entries of the data
// folder the swap replaces: what Recover needs to finish the swap.
const planFile = ".vwstream-plan.json"

type plan struct {
	Replace []string `json:"replace"`
}

// SwapIn moves the staged entries into the data folder. The entries they
// replace (all data entries, or those keep does not claim) go aside first and
// are removed once the new ones are in place; vwstream's own entries (the
// node id) always stay. The swap is committed by one rename before the first
// entry moves: a crash before it leaves the data folder as it was, a crash
// after it is completed by Recover, so the folder never stays half-swapped.
// An error before the commit, or while moving (then undone), leaves it as it was.
func (s *Staging) SwapIn(keep func(name string) bool) error {
	all, err := Entries(s.dir)
	if err != nil {
		return err
	}
	var p plan
	for _, name := range all {
		if keep == nil || !keep(name) {
			p.Replace = append(p.Replace, name)
		}
	}
	b, _ := json.Marshal(p)
	if err := WriteFileAtomic(filepath.Join(s.Path(), planFile), b, 0o600); err != nil {
		return fmt.Errorf("write swap plan: %w", err)
	}
	if err := os.Rename(s.Path(), s.swapPath()); err != nil {
		return fmt.Errorf("commit swap: %w", err)
	}
	if err := SyncDir(s.dir); err != nil {
		return err
	}
	if err := s.move(p); err != nil {
		return err
	}
	return finish(s.dir, s.swapPath(), s.asidePath())
}

// move puts the planned entries aside and the staged ones in, undoing what it
// did when a rename fails (an undone swap is no longer committed).
func (s *Staging) move(p plan) error {
	aside, swap := s.asidePath(), s.swapPath()
	if err := os.Mkdir(aside, 0o700); err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	var movedAside, movedIn []string
	undo := func(cause error) error {
		for _, name := range movedIn {
			_ = os.Rename(filepath.Join(s.dir, name), filepath.Join(swap, name))
		}
		for _, name := range movedAside {
			_ = os.Rename(filepath.Join(aside, name), filepath.Join(s.dir, name))
		}
		_ = os.Remove(aside)
		_ = os.Rename(swap, s.Path()) // uncommitted again: Recover would drop it
		return cause
	}
	for _, name := range p.Replace {
		if err := os.Rename(filepath.Join(s.dir, name), filepath.Join(aside, name)); err != nil {
			return undo(fmt.Errorf("move aside %s: %w", name, err))
		}
		movedAside = append(movedAside, name)
		testHookMoved()
	}
	news, err := os.ReadDir(swap)
	if err != nil {
		return undo(err)
	}
	for _, de := range news {
		if de.Name() == planFile {
			continue
		}
		if err := os.Rename(filepath.Join(swap, de.Name()), filepath.Join(s.dir, de.Name())); err != nil {
			return undo(fmt.Errorf("move %s into place: %w", de.Name(), err))
		}
		movedIn = append(movedIn, de.Name())
		testHookMoved()
	}
	return nil
}

// finish makes the swap durable and drops what it replaced: the swap folder
// first (from then on the aside folder is known to be replaced data), then
// the aside folder, even when the sync failed, so a failed fsync does not
// leave a full copy of the vault behind.
func finish(dir, swap, aside string) error {
	serr := SyncDir(dir)
	if err := os.RemoveAll(swap); err != nil {
		return errors.Join(serr, fmt.Errorf("remove swap folder: %w", err))
	}
	if err := os.RemoveAll(aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errors.Join(serr, fmt.Errorf("remove replaced data in %s: %w", aside, err))
	}
	return serr
}

// Recover brings dir back to a whole state after an interrupted restore, and
// is run before anything reads or restores into the folder: a staging folder
// (never committed) is removed, a committed swap is completed from its plan,
// and the aside folder of a completed swap is removed. An aside folder of an
// earlier version, which has no plan, is only named in the log: it may hold
// the only copy of the data it was replacing.
func Recover(dir string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("recover %s: %w", dir, err)
	}
	swaps := map[string]bool{}
	var errs []error
	for _, de := range des {
		name, p := de.Name(), filepath.Join(dir, de.Name())
		switch {
		case strings.HasPrefix(name, stagePrefix):
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, fmt.Errorf("remove the staging folder of an interrupted restore: %w", err))
			} else {
				log.Warn("removed the staging folder of an interrupted restore", "path", p)
			}
		case strings.HasPrefix(name, swapPrefix):
			id := strings.TrimPrefix(name, swapPrefix)
			swaps[id] = true
			if err := complete(dir, id); err != nil {
				errs = append(errs, fmt.Errorf("complete the interrupted restore in %s: %w", p, err))
			} else {
				log.Warn("completed an interrupted restore", "dir", dir)
			}
		}
	}
	for _, de := range des {
		name, p := de.Name(), filepath.Join(dir, de.Name())
		if strings.HasPrefix(name, asidePrefix) && !swaps[strings.TrimPrefix(name, asidePrefix)] {
			// The swap finished; only the removal of the replaced data was cut short.
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, fmt.Errorf("remove replaced data in %s: %w", p, err))
			}
			continue
		}
		for _, legacy := range legacyAsidePrefixes {
			if strings.HasPrefix(name, legacy) {
				log.Warn("an interrupted restore of an earlier version left the data it was replacing here; move it away or delete it once checked", "path", p)
			}
		}
	}
	return errors.Join(errs...)
}

// complete finishes the committed swap id in dir. Every entry to replace was
// moved aside before the first new one came in: a planned name that is not
// aside yet is still the old entry.
func complete(dir, id string) error {
	s := &Staging{dir: dir, id: id}
	swap, aside := s.swapPath(), s.asidePath()
	b, err := os.ReadFile(filepath.Join(swap, planFile))
	if err != nil {
		return err
	}
	var p plan
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("read swap plan: %w", err)
	}
	if err := os.MkdirAll(aside, 0o700); err != nil {
		return err
	}
	for _, name := range p.Replace {
		if _, err := os.Lstat(filepath.Join(aside, name)); err == nil {
			continue
		}
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(aside, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	news, err := os.ReadDir(swap)
	if err != nil {
		return err
	}
	for _, de := range news {
		if de.Name() == planFile {
			continue
		}
		if err := os.Rename(filepath.Join(swap, de.Name()), filepath.Join(dir, de.Name())); err != nil {
			return err
		}
	}
	return finish(dir, swap, aside)
}
