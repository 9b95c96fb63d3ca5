package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/vwstream/vwstream/internal/bucket"
	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/head"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/restore"
	"github.com/vwstream/vwstream/internal/serverdb"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/wiring"
)

// restoreOptions is the parsed command line of restore.
type restoreOptions struct {
	To       string    // target data folder
	At       time.Time // point in time; zero for latest
	TXID     uint64    // the state right after this transaction; 0 for latest
	Snapshot string    // snapshot name, "latest", or "" to restore from the replica
	Force    bool      // replace a non-empty target
	Open     bool      // replace a database another process has open
	Older    bool      // accept a replica older than its head
	JSON     bool
	// DatabaseURL is --database-url given on this command line naming a
	// PostgreSQL or MySQL server: a snapshot's dump is loaded there. The
	// environment's DATABASE_URL is never a restore destination (it is
	// likely the live database).
	DatabaseURL *serverdb.URL
}

// runRestore is `vwstream restore --to DIR [--at RFC3339 | --txid N | --snapshot NAME|latest] [--force]`.
func runRestore(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("restore --to DIR [--at RFC3339 | --txid N | --snapshot NAME|latest [--database-url URL]] [--force] [--json] [flags]",
		"Restore the database and files into DIR: from the replica (latest, or the state at\n"+
			"--at, or right after transaction --txid), or from a snapshot (--snapshot). The data is restored into a temporary folder,\n"+
			"checked, then moved into place, so DIR is never half-written.\n\n"+
			"A snapshot of a PostgreSQL or MySQL/MariaDB database is loaded into the database\n"+
			"--database-url names on this command line (it must be empty; --force replaces the\n"+
			"dumped tables) and its row counts are checked against the manifest; without\n"+
			"--database-url the dump is written into DIR with the command that loads it.")
	var opts restoreOptions
	var at string
	c.StringVar(&opts.To, "to", "", "`DIR` to restore the data folder into (required)")
	c.StringVar(&at, "at", "", "restore the state at this `TIME`, RFC 3339 (2025-01-31T12:00:00Z)")
	c.Uint64Var(&opts.TXID, "txid", 0, "restore the state right after transaction `N` (status and update reports name them)")
	c.StringVar(&opts.Snapshot, "snapshot", "", "restore this snapshot `NAME`, or latest")
	c.BoolVar(&opts.Force, "force", false, "replace DIR even if it holds data")
	c.BoolVar(&opts.Open, "allow-open", false, "with --force, replace a database another process has open\n(its next commit is lost: stop Vaultwarden instead)")
	c.BoolVar(&opts.Older, "accept-older", false, "restore even when the replica holds less than its head promised (newest objects deleted,\nan older config.json or rsa_key put back)")
	c.BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	if err := a.parse(c, args, true); err != nil {
		return err
	}
	if err := c.noArgs(); err != nil {
		return err
	}
	if opts.To == "" {
		return usageErrorf("restore: --to DIR is required")
	}
	if n := btoi(at != "") + btoi(opts.Snapshot != "") + btoi(opts.TXID != 0); n > 1 {
		return usageErrorf("restore: --at, --txid and --snapshot exclude each other")
	}
	if at != "" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return usageErrorf("restore: --at=%q: not an RFC 3339 time; accepted: 2025-01-31T12:00:00Z, 2025-01-31T13:00:00+01:00", at)
		}
		opts.At = t
	}
	cfg, err := a.loadConfig(c, false)
	if err != nil {
		return err
	}
	c.Visit(func(f *flag.Flag) {
		if f.Name == "database-url" || f.Name == "database-url-file" {
			opts.DatabaseURL = cfg.Server
		}
	})
	if opts.DatabaseURL != nil && opts.Snapshot == "" {
		return usageErrorf("restore: --database-url loads a snapshot's dump; give --snapshot NAME|latest")
	}
	if cfg.Server != nil && opts.Snapshot == "" {
		return usageErrorf("restore: DATABASE_URL names a %s server, which has no replica, only snapshots; give --snapshot NAME|latest", cfg.Server.Kind)
	}
	log := newLogger(cfg, a.stderr)
	plain, err := bucket.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	if opts.Snapshot != "" {
		return restoreSnapshot(ctx, a, cfg, plain, opts)
	}
	// The bucket key unwraps while the restore lists and plans.
	data, ready := bucket.DataLater(ctx, plain, cfg, bucket.ReadKey)
	if opts.At.IsZero() && opts.TXID == 0 && !opts.Older {
		if err := bucket.AfterKey(ctx, ready, checkHead(ctx, data)); err != nil {
			return err
		}
	}
	var verify func(string) error // config.json and rsa_key* against the head
	if !opts.Older {
		verify = func(stage string) error { return wiring.CheckHeadFiles(ctx, cfg, data, stage) }
	}
	res, err := restore.Replica(ctx, restore.Options{
		Store:     data,
		Dir:       opts.To,
		DBName:    filepath.Base(cfg.DBPath),
		At:        opts.At,
		TXID:      opts.TXID,
		Force:     opts.Force,
		AllowOpen: opts.Open,
		Files:     wiring.RestoreFiles(cfg, data),
		Verify:    verify,
		Logger:    log,
	})
	if err := bucket.AfterKey(ctx, ready, err); err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(a.stdout, res)
	}
	fmt.Fprintf(a.stdout, "restored %s from %s\n", res.Dir, plain)
	fmt.Fprintf(a.stdout, "  database  %s at transaction %d (%s)\n", res.Database, res.TXID, res.Timestamp.UTC().Format(time.RFC3339))
	fmt.Fprintf(a.stdout, "  files     %d\n", res.Files)
	return nil
}

// restoreSnapshot is restore --snapshot NAME|latest: a snapshot archive from
// snapshots/, decrypted with the configured snapshot passphrase.
func restoreSnapshot(ctx context.Context, a *app, cfg *config.Config, plain objstore.Store, opts restoreOptions) error {
	namer, err := wiring.Namer(cfg)
	if err != nil {
		return err
	}
	res, err := snapshot.Restore(ctx, snapshot.RestoreOptions{Store: plain, Namer: namer, Name: opts.Snapshot,
		To: opts.To, Force: opts.Force, AllowOpen: opts.Open, Keys: wiring.SnapshotKeys(cfg), Logger: newLogger(cfg, a.stderr),
		DatabaseURL: opts.DatabaseURL})
	if err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(a.stdout, res)
	}
	fmt.Fprintf(a.stdout, "restored %s from snapshot %s (captured %s)\n", opts.To, res.Name, res.CapturedAt.UTC().Format(time.RFC3339))
	if db := res.Database; db != nil {
		fmt.Fprintf(a.stdout, "  files      %d\n", res.Files)
		fmt.Fprintf(a.stdout, "  database   %s %s, schema migration %s, %d tables\n", db.Kind, db.ServerVersion, db.Migration, len(db.Tables))
		if res.LoadedInto != "" {
			fmt.Fprintf(a.stdout, "  loaded     into %s; row counts match the manifest\n", res.LoadedInto)
		} else {
			file := filepath.Join(opts.To, res.DumpFile)
			fmt.Fprintf(a.stdout, "  dump       %s; %s\n", file, serverdb.LoadHint(db.Format, file))
		}
	} else {
		fmt.Fprintf(a.stdout, "  files      %d, integrity %s\n", res.Files, res.Integrity)
	}
	if res.MissingAttachments > 0 {
		fmt.Fprintf(a.stdout, "  degraded   %d attachment row(s) without their file\n", res.MissingAttachments)
	}
	for _, f := range res.Changed {
		fmt.Fprintf(a.stdout, "  changed    %s was being rewritten during the snapshot: its end is zero-padded\n", f)
	}
	return nil
}

// checkHead refuses a replica older than its head (head.Check).
func checkHead(ctx context.Context, data objstore.Store) error {
	txid, err := dbrepl.ReplicaTXID(ctx, data)
	if err != nil {
		return err
	}
	return head.Check(ctx, data, txid)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
