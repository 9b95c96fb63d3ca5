// Package restore rebuilds a data folder from the replica: the database from db/
// (latest or a point in time) and the files from files/, staged together in a
// hidden folder inside the target and moved into place only when both are
// complete and checked. `vwstream restore` and the node's start-up use it.
package restore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/vault"
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
	TXID   uint64         // the state right after this transaction; 0: latest (or At)
	Force  bool           // replace what Dir holds
	// KeepOthers, with Force, replaces only the entries the restore brings
	// (and the old database's -wal, -shm and litestream folder) and keeps the
	// rest of Dir (a secondary's icon_cache, tmp, files it does not sync).
	KeepOthers bool
	// Files restores files/ into the staging folder; nil skips files.
	Files FilesFunc
	// Verify checks the staged folder (its path is given) once everything is
	// restored and checked, before anything in Dir changes; an error aborts.
	Verify func(stage string) error
	// BeforeSwap runs once everything is staged and checked, just before the
	// move into Dir (a secondary stops Vaultwarden there); an error aborts.
	BeforeSwap func() error
	// AllowOpen replaces a database another process has open (a sidecar's
	// Vaultwarden, which vwstream cannot stop); without it such a restore is
	// refused (vault.ErrInUse), since that process's next commit would be lost.
	AllowOpen bool
	Logger    *slog.Logger
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
	if err := vault.Recover(opts.Dir, log); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	existing, err := vault.Entries(opts.Dir)
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	if len(existing) > 0 && !opts.Force {
		return res, fmt.Errorf("restore into %s: %w (%d entries; use --force to replace them)", opts.Dir, ErrNotEmpty, len(existing))
	}

	staging, err := vault.NewStaging(opts.Dir)
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	defer func() { _ = staging.Remove() }()
	stage := staging.Path()

	// The database and the files are independent downloads into the same
	// staging folder: fetch them at once (a serverless cold start waits for both).
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		db, err := dbrepl.Restore(gctx, dbrepl.RestoreOptions{
			Store:      opts.Store,
			OutputPath: filepath.Join(stage, opts.DBName),
			Timestamp:  opts.At,
			TXID:       opts.TXID,
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
	if opts.Verify != nil {
		if err := opts.Verify(stage); err != nil {
			return res, err
		}
	}
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
	if res.Replaced && !opts.AllowOpen {
		if busy, err := vault.InUse(res.Database); err != nil {
			return res, fmt.Errorf("restore: %w", err)
		} else if busy {
			return res, fmt.Errorf("restore into %s: %w", opts.Dir, vault.ErrInUse)
		}
	}
	if err := staging.SwapIn(keep); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	log.Info("restored from the replica", "dir", opts.Dir, "txid", res.TXID, "timestamp", res.Timestamp, "files", res.Files)
	return res, nil
}
