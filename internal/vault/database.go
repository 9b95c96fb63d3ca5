package vault

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Querier is an open database, one of its connections or a transaction on it
// (*sql.DB, *sql.Conn, *sql.Tx).
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Integrity runs PRAGMA integrity_check on an open database (inside a
// transaction, on that transaction's state) and returns "ok" or the first
// problems, joined on one line.
func Integrity(ctx context.Context, db Querier) (string, error) {
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check(20)")
	if err != nil {
		return "", fmt.Errorf("integrity_check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return "", fmt.Errorf("integrity_check: %w", err)
		}
		problems = append(problems, strings.Join(strings.Fields(s), " "))
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("integrity_check: %w", err)
	}
	return strings.Join(problems, "; "), nil
}

// CheckIntegrity runs PRAGMA integrity_check on the database file at path and
// returns an error naming the first problems unless it says "ok".
//
// SQLite reads the file through a memory map here (mmap_size up to
// integrityMmapSize) instead of one read call per page: the same check, about
// a third of the CPU for a 100 MB database (the check visits every page, an
// index's pages more than once). The file is one no other process writes (a
// restore's staged copy), so a mapping cannot see it shrink.
func CheckIntegrity(ctx context.Context, path string) (err error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=mmap_size("+strconv.FormatInt(integrityMmapSize, 10)+")")
	if err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	defer func() {
		if e := db.Close(); e != nil && err == nil {
			err = fmt.Errorf("integrity check: %w", e)
		}
	}()
	res, err := Integrity(ctx, db)
	if err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("integrity check failed: %s", res)
	}
	return nil
}

// integrityMmapSize bounds CheckIntegrity's memory map (address space, not
// memory: the pages stay in the page cache); a larger database is read the
// usual way beyond it.
const integrityMmapSize = 64 << 30

// SQLite's lock bytes (its os_unix.c): a connection in WAL mode holds a shared
// lock on the dead-man-switch byte of the -shm file for as long as it is open;
// a connection in a transaction holds one in the shared range of the database
// file, and a writer the reserved byte.
const (
	shmDMSByte   = 128
	pendingByte  = 0x40000000
	reservedByte = pendingByte + 1
	sharedFirst  = pendingByte + 2
	sharedSize   = 510
)

// ErrInUse reports a database that another process has open.
var ErrInUse = errors.New("the database is open in another process (stop Vaultwarden first)")

// InUse reports whether another process has the SQLite database at path open:
// in WAL mode any open connection, otherwise any connection in a transaction.
// It asks the kernel whether the lock bytes SQLite uses could be taken, and
// takes none of them.
func InUse(path string) (bool, error) {
	probe := func(file string, start, size int64) (bool, error) {
		f, err := os.Open(file)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		defer f.Close()
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: start, Len: size}
		if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil {
			return false, fmt.Errorf("probe locks of %s: %w", file, err)
		}
		return lk.Type != unix.F_UNLCK, nil
	}
	if busy, err := probe(path+"-shm", shmDMSByte, 1); busy || err != nil {
		return busy, err
	}
	return probe(path, pendingByte, 2+sharedSize)
}
