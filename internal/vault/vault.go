// Package vault owns Vaultwarden's data folder: what lives in it besides
// Vaultwarden's own entries (the node's identity, restore staging), how a
// restore is moved into it as one step that survives a crash, how its files
// and folders are made durable, and the checks every capability runs against
// it (database integrity, attachment rows without their file, a database open
// by another process). Replica restores, snapshot restores, a secondary's
// pulls and the demo all go through it.
package vault

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Names of vwstream's own entries in a data folder. None of them is data: file
// sync, snapshots and restores leave them out, and a swap keeps them.
const (
	// NodeIDFile identifies the volume's node: a restarted process on the same
	// volume knows the lease its predecessor held.
	NodeIDFile = ".vwstream-node-id"
	// LockFile is held (flock) by the one process that runs a node on the folder.
	LockFile = ".vwstream.lock"
	// PromoteTokenFile holds the token POST /promote requires when
	// PROMOTE_TOKEN is unset (mode 0600): the node makes it, promote reads it.
	PromoteTokenFile = ".vwstream-promote-token"
	// stagePrefix names a restore being built (not yet checked): removed by Recover.
	stagePrefix = ".vwstream-restore-"
	// swapPrefix names a checked restore being moved in: completed by Recover.
	swapPrefix = ".vwstream-swap-"
	// asidePrefix names the entries a swap replaces, until it has finished.
	asidePrefix = ".vwstream-aside-"
	// keptPrefix names what KeepAside kept for a person to look at.
	keptPrefix = ".vwstream-kept-"
)

// legacyAsidePrefixes name the aside folders of earlier versions, which had no
// plan to complete them by: Recover names them in the log and keeps them.
var legacyAsidePrefixes = []string{".vwstream-replaced-", ".vwstream-old-"}

// Own reports whether name (an entry of a data folder) is vwstream's own
// bookkeeping rather than data.
func Own(name string) bool {
	if name == NodeIDFile || name == LockFile || name == PromoteTokenFile {
		return true
	}
	for _, p := range append([]string{stagePrefix, swapPrefix, asidePrefix, keptPrefix}, legacyAsidePrefixes...) {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Entries lists the data entries of dir: everything but vwstream's own.
func Entries(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, de := range des {
		if !Own(de.Name()) {
			names = append(names, de.Name())
		}
	}
	return names, nil
}

// SyncDir makes the creations, renames and removals in dir durable. File
// systems that cannot sync a folder (EINVAL) are taken as done.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) && !isEINVAL(err) {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}

// SyncFile makes the contents of the file at path durable.
func SyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// WriteFileAtomic replaces the file at path with data as one step that
// survives a crash: a synced temporary file beside it, renamed over it, and
// the rename made durable. Readers see the old contents or the new, never a
// mix; a crash leaves at most a .tmp- file behind.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return replaceFile(path, data, perm, true)
}

// ReplaceFile is WriteFileAtomic without the syncs: readers still see the
// old contents or the new, but a power loss may keep the old. For records
// rewritten often whose loss only costs work (a progress marker).
func ReplaceFile(path string, data []byte, perm os.FileMode) error {
	return replaceFile(path, data, perm, false)
}

func replaceFile(path string, data []byte, perm os.FileMode, durable bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if !durable {
		return nil
	}
	return SyncDir(dir)
}

// KeepAside moves the files at paths (those that exist) into a new folder
// .vwstream-kept-<why>-<time> in dir, which nothing syncs, snapshots or
// replaces, and returns it ("" when none existed). It is for data a person
// must look at before it could be lost: a fenced primary's database.
func KeepAside(dir, why string, paths ...string) (string, error) {
	kept := filepath.Join(dir, keptPrefix+why+"-"+time.Now().UTC().Format("20060102-150405"))
	moved := 0
	for _, p := range paths {
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if moved == 0 {
			if err := os.MkdirAll(kept, 0o700); err != nil {
				return "", err
			}
		}
		if err := os.Rename(p, filepath.Join(kept, filepath.Base(p))); err != nil {
			return kept, err
		}
		moved++
	}
	if moved == 0 {
		return "", nil
	}
	return kept, errors.Join(SyncDir(kept), SyncDir(dir))
}
