package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/vwstream/vwstream/internal/vault"
)

// ErrFolderInUse is returned when another live process holds the data folder.
var ErrFolderInUse = errors.New("data folder in use by another vwstream process")

// folderLock is an exclusive lock on the data folder, held for the node's
// life. It is a flock(2) on DATA_FOLDER/.vwstream.lock: the kernel releases it
// when the process dies in any way (kill -9 included), so only a live holder
// refuses a second process, and a restart after a crash takes over the lease
// its predecessor left at once. The file holds the holder's PID for the
// message of the process refused.
type folderLock struct{ f *os.File }

// lockDataFolder takes the lock or fails at once, naming the holder's PID.
func lockDataFolder(dir string) (*folderLock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("lock data folder: %w", err)
	}
	path := filepath.Join(dir, vault.LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data folder: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "unknown PID"
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = "PID " + strconv.Itoa(pid)
			}
			return nil, fmt.Errorf("%w: %s holds %s; stop it first (one process per data folder)", ErrFolderInUse, holder, path)
		}
		return nil, fmt.Errorf("lock data folder: %w", err)
	}
	// The PID is only for the message: failing to write it is no reason to stop.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &folderLock{f: f}, nil
}

// release gives the lock up (the kernel does it too when the process ends).
func (l *folderLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}
