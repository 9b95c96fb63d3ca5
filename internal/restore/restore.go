// Package restore rebuilds a data folder from the replica: the database from db/
// (latest or a point in time) and the files from files/, staged together in a
// hidden folder inside the target and moved into place only when both are
// complete and checked. `vwstream restore` and the node's start-up use it.
package restore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/objstore"
)

// ErrNotEmpty reports a target folder that holds data while Force is off.
var ErrNotEmpty = errors.New("folder is not empty")

// FilesFunc restores the files under files/ into dir (an empty staging folder).
// It returns how many files it wrote.
type FilesFunc func(ctx context.Context, dir string) (int, error)

// Options describe one restore from the replica.
type Options struct {
	Store  objstore.Store // the data view (sealed when a key is set)
	Dir    string         // the data folder to restore into
	DBName string         // the database file name inside Dir (db.sqlite3)
	At     time.Time      // zero: latest
	Force  bool           // replace what Dir holds
	// KeepOthers, with Force, replaces only the entries the restore brings
	// (and the old database's -wal, -shm and litestream folder) and keeps the
	// rest of Dir (a secondary's icon_cache, tmp, files it does not sync).
	KeepOthers bool
	// Files restores files/ into the staging folder; nil skips files.
	Files FilesFunc
	// BeforeSwap runs once everything is staged and checked, just before the
	// move into Dir (a secondary stops Vaultwarden there); an error aborts.
	BeforeSwap func() error
	Logger     *slog.Logger
}

// Result describes a finished restore.
type Result struct {
	Dir       string    `json:"dir"`
	Database  string    `json:"database"`
	TXID      uint64    `json:"txid"`
	Timestamp time.Time `json:"timestamp"` // when the last restored transaction was captured
	Files     int       `json:"files"`
	Replaced  bool      `json:"replaced"` // Dir held data that the restore replaced
}

// stagePrefix and asidePrefix name the hidden folders a restore works in; both
// live inside Dir so every move is a rename on one file system, even when Dir
// is a mount point that cannot itself be renamed.
const (
	stagePrefix = ".vwstream-restore-"
	asidePrefix = ".vwstream-replaced-"
)

// NodeIDFile names the node's identity file in the data folder; a restore keeps
// it, since it identifies the volume, not the data.
const NodeIDFile = ".vwstream-node-id"

// PromoteTokenFile names the file in the data folder holding the token POST
// /promote requires when PROMOTE_TOKEN is unset; a restore keeps it too.
const PromoteTokenFile = ".vwstream-promote-token"

// Replica restores the database and files into opts.Dir. Nothing in Dir changes
// until both are restored and the database passed its integrity check; with
// Force, the entries they replace are moved aside first and removed only after
// the new ones are in place.
func Replica(ctx context.Context, opts Options) (Result, error) {
	res := Result{Dir: opts.Dir}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.DBName == "" {
		opts.DBName = "db.sqlite3"
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	removeLeftovers(opts.Dir, log)
	existing, err := entries(opts.Dir)
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	if len(existing) > 0 && !opts.Force {
		return res, fmt.Errorf("restore into %s: %w (%d entries; use --force to replace them)", opts.Dir, ErrNotEmpty, len(existing))
	}

	stage, err := os.MkdirTemp(opts.Dir, stagePrefix)
	if err != nil {
		return res, fmt.Errorf("restore: create staging folder: %w", err)
	}
	defer func() { _ = os.RemoveAll(stage) }()

	// The database and the files are independent downloads into the same
	// staging folder: fetch them at once (a serverless cold start waits for both).
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		db, err := dbrepl.Restore(gctx, dbrepl.RestoreOptions{
			Store:      opts.Store,
			OutputPath: filepath.Join(stage, opts.DBName),
			Timestamp:  opts.At,
			Logger:     log,
		})
		res.TXID, res.Timestamp = db.TXID, db.Timestamp
		return err
	})
	if opts.Files != nil {
		g.Go(func() error {
			n, err := opts.Files(gctx, stage)
			res.Files = n
			if err != nil {
				return fmt.Errorf("restore files: %w", err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return res, err
	}
	res.Database = filepath.Join(opts.Dir, opts.DBName)
	res.Replaced = len(existing) > 0
	if opts.BeforeSwap != nil {
		if err := opts.BeforeSwap(); err != nil {
			return res, fmt.Errorf("restore: %w", err)
		}
	}
	var keep func(string) bool
	if opts.KeepOthers {
		keep = func(name string) bool {
			if _, err := os.Lstat(filepath.Join(stage, name)); err == nil {
				return false
			}
			switch name {
			case opts.DBName + "-wal", opts.DBName + "-shm", opts.DBName + "-journal", "." + opts.DBName + "-litestream":
				return false // they belong to the database being replaced
			}
			return true
		}
	}
	if err := swapIn(stage, opts.Dir, keep); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	log.Info("restored from the replica", "dir", opts.Dir, "txid", res.TXID, "timestamp", res.Timestamp, "files", res.Files)
	return res, nil
}

// entries lists dir's entries, leaving out our own staging leftovers.
func entries(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, de := range des {
		if strings.HasPrefix(de.Name(), stagePrefix) || strings.HasPrefix(de.Name(), asidePrefix) || de.Name() == NodeIDFile || de.Name() == PromoteTokenFile {
			continue
		}
		names = append(names, de.Name())
	}
	return names, nil
}

// swapIn moves every entry of stage into dir. The existing entries of dir (all,
// or those keep does not claim) are first moved into an aside folder, put back
// if a move fails, and removed at the end.
func swapIn(stage, dir string, keep func(name string) bool) error {
	all, err := entries(dir)
	if err != nil {
		return err
	}
	var old []string
	for _, name := range all {
		if keep == nil || !keep(name) {
			old = append(old, name)
		}
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	aside := filepath.Join(dir, asidePrefix+hex.EncodeToString(b[:]))
	if len(old) > 0 {
		if err := os.Mkdir(aside, 0o700); err != nil {
			return err
		}
	}
	var movedAside []string
	undo := func() {
		for _, name := range movedAside {
			_ = os.Rename(filepath.Join(aside, name), filepath.Join(dir, name))
		}
		_ = os.Remove(aside)
	}
	for _, name := range old {
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(aside, name)); err != nil {
			undo()
			return fmt.Errorf("move aside %s: %w", name, err)
		}
		movedAside = append(movedAside, name)
	}
	news, err := os.ReadDir(stage)
	if err != nil {
		undo()
		return err
	}
	var movedIn []string
	for _, de := range news {
		if err := os.Rename(filepath.Join(stage, de.Name()), filepath.Join(dir, de.Name())); err != nil {
			for _, name := range movedIn {
				_ = os.Rename(filepath.Join(dir, name), filepath.Join(stage, name))
			}
			undo()
			return fmt.Errorf("move %s into place: %w", de.Name(), err)
		}
		movedIn = append(movedIn, de.Name())
	}
	// The new data is in place: drop the old whatever happens next, so a
	// failed fsync does not leave a full copy of the vault behind.
	serr := syncDir(dir)
	if len(old) > 0 {
		if err := os.RemoveAll(aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return errors.Join(serr, fmt.Errorf("remove replaced data in %s: %w", aside, err))
		}
	}
	return serr
}

// removeLeftovers deletes the staging folders an interrupted restore left in
// dir: each can hold a whole vault, and all of it is a copy of the replica.
// An aside folder (the data a restore was replacing when it was interrupted)
// may be the only copy of that data, so it is kept and named in the log.
func removeLeftovers(dir string, log *slog.Logger) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, de := range des {
		p := filepath.Join(dir, de.Name())
		switch {
		case strings.HasPrefix(de.Name(), stagePrefix):
			if err := os.RemoveAll(p); err == nil {
				log.Warn("removed the staging folder of an interrupted restore", "path", p)
			}
		case strings.HasPrefix(de.Name(), asidePrefix):
			log.Warn("an interrupted restore left the data it was replacing here; move it away or delete it once checked", "path", p)
		}
	}
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
