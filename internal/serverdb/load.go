package serverdb

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// LoadOptions say how to load a dump.
type LoadOptions struct {
	Format string // FormatPGCustom or FormatSQL, from the manifest
	Tools  Tools
	// Force loads into a database that already holds tables: pg_restore
	// drops the dumped objects first (--clean --if-exists); a MySQL dump
	// drops each table before creating it. Other tables stay.
	Force bool
}

// Empty reports the user tables of the database, none meaning it is empty.
func Empty(ctx context.Context, u *URL) ([]string, error) {
	db, err := Open(ctx, u)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	names, err := tables(ctx, db, u.Kind)
	return names, u.scrubbed(err)
}

// Load restores a dump read from r into the URL's database, which must be
// empty unless Force: pg_restore in one transaction (all or nothing), or the
// mysql/mariadb client. The caller checks the row counts afterwards (Count).
func Load(ctx context.Context, u *URL, r io.Reader, o LoadOptions) error {
	want := FormatSQL
	if u.Kind == PostgreSQL {
		want = FormatPGCustom
	}
	if o.Format != want {
		return fmt.Errorf("load: the dump is %q, a %s database needs %q", o.Format, u.Kind, want)
	}
	t, err := o.Tools.resolve(u.Kind)
	if err != nil {
		return err
	}
	names, err := Empty(ctx, u)
	if err != nil {
		return err
	}
	if len(names) > 0 && !o.Force {
		shown := names
		if len(shown) > 5 {
			shown = append(shown[:5:5], "...")
		}
		return fmt.Errorf("%w: %s holds %d tables (%s); load into an empty database, or use --force to replace the dumped tables", ErrNotEmpty, u, len(names), strings.Join(shown, ", "))
	}
	if u.Kind == PostgreSQL {
		args := []string{"--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", "--no-password", "--dbname=" + u.conninfo()}
		if o.Force {
			args = append(args, "--clean", "--if-exists")
		}
		if err := u.run(ctx, t.Load, args, r, io.Discard); err != nil {
			return fmt.Errorf("load: %w", err)
		}
		return nil
	}
	args := append(u.mysqlArgs(), "--default-character-set=utf8mb4", "--batch", u.Database)
	if err := u.run(ctx, t.Load, args, r, io.Discard); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	return nil
}

// LoadHint is the line telling how to load a dump file with the stock tools.
func LoadHint(format, file string) string {
	if format == FormatPGCustom {
		return "load it with: pg_restore --no-owner --no-privileges --single-transaction --dbname=postgresql://USER@HOST/DB " + file + " (PGPASSWORD in the environment)"
	}
	return "load it with: mariadb --host=HOST --user=USER DB < " + file + " (or mysql; MYSQL_PWD in the environment)"
}
