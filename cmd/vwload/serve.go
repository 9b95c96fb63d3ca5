package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"

	"github.com/vwstream/vwstream/internal/vaultsim"
	"golang.org/x/sync/errgroup"
)

// runServe answers /alive and writes at --write-rate until SIGTERM, then stops the
// workload (finishing its transaction in flight), closes the database and exits 0.
func runServe(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("serve")
	dir := fs.String("dir", "", "data folder")
	addr := fs.String("addr", "127.0.0.1:8080", "listen address for /alive")
	var wf workloadFlags
	wf.register(fs, 0)
	fs.Float64Var(&wf.rate, "write-rate", 5, "transactions per second (0: serve only)")
	migrate := fs.String("migrate", "", "before serving, migrate the schema as a newer release would: add this `COLUMN` to ciphers and fill it")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireDir(fs, *dir); err != nil {
		return err
	}
	writeRate := wf.rate
	opts, err := wf.options("serve")
	if err != nil {
		return err
	}
	v, err := vaultsim.Open(*dir)
	if err != nil {
		return err
	}
	if *migrate != "" {
		if err := migrateSchema(ctx, v, *migrate); err != nil {
			v.Close()
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return vaultsim.Serve(gctx, *addr, v) })
	var w *vaultsim.Workload
	if writeRate > 0 {
		w = vaultsim.NewWorkload(v, opts)
		g.Go(func() error {
			_, err := w.Run(gctx)
			return err
		})
	}
	slog.Info("vwload serving", "addr", *addr, "dir", *dir, "write_rate", writeRate)
	err = g.Wait()
	if cerr := v.Close(); err == nil {
		err = cerr
	}
	if w != nil {
		printSummary(stdout, w.Stats(), false)
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

var columnName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// migrateSchema is a release's schema migration in one transaction: a new
// column on ciphers, filled on every row, and the migration recorded the way
// Diesel records one (__diesel_schema_migrations), so an older program could
// tell it is looking at a newer schema.
func migrateSchema(ctx context.Context, v *vaultsim.Vault, column string) error {
	if !columnName.MatchString(column) {
		return fmt.Errorf("%w: serve: --migrate=%q is not a column name", errUsage, column)
	}
	tx, err := v.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	for _, q := range []string{
		"ALTER TABLE ciphers ADD COLUMN " + column + " TEXT",
		"UPDATE ciphers SET " + column + " = 'migrated'",
		"CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
		"INSERT OR IGNORE INTO __diesel_schema_migrations (version) VALUES ('99990101000000')",
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	slog.Info("vwload migrated the schema", "column", column)
	return nil
}
