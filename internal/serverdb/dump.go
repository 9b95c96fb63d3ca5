package serverdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path"
)

// Dump formats, recorded in the manifest.
const (
	FormatPGCustom = "pg_dump-custom" // pg_restore reads it
	FormatSQL      = "sql"            // the mysql/mariadb client reads it
)

// Info is what a dump knows of the database: it goes into the snapshot's
// manifest.
type Info struct {
	Kind          string           `json:"kind"`
	ServerVersion string           `json:"server_version"`
	DumpTool      string           `json:"dump_tool"`
	Format        string           `json:"format"`
	Migration     string           `json:"schema_migration"` // newest __diesel_schema_migrations version
	Tables        map[string]int64 `json:"tables"`           // rows of every table, in the dump's snapshot
	// Snapshot is PostgreSQL's pg_current_snapshot() of the dump: exactly the
	// transactions it shows are in the dump.
	Snapshot string `json:"snapshot,omitempty"`
}

// AttachmentRow is an attachments row of the dump's snapshot.
type AttachmentRow struct {
	Path string // attachments/<cipher_uuid>/<id>
	Size int64
}

// Snapshot is an open, consistent point of a server database, held until
// Close. On PostgreSQL the point is a repeatable-read transaction whose
// snapshot is exported to pg_dump (--snapshot), and whose rows are counted in
// that same transaction; on MySQL/MariaDB mysqldump takes its own consistent
// InnoDB snapshot (--single-transaction) and the rows are counted in the dump
// stream itself, so on both the counts are those of the dump.
type Snapshot struct {
	u     *URL
	tools Tools
	info  Info
	db    *sql.DB
	conn  *sql.Conn
	tx    *sql.Tx
	id    string // exported snapshot id
	rows  []AttachmentRow
	done  bool
}

// Begin connects and fixes the snapshot point (PostgreSQL) or checks the
// server (MySQL). Listing files after Begin returns means every attachment
// row of the snapshot whose upload had finished has its file listed.
func Begin(ctx context.Context, u *URL, tools Tools) (_ *Snapshot, err error) {
	t, err := tools.resolve(u.Kind)
	if err != nil {
		return nil, err
	}
	db, err := Open(ctx, u)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{u: u, tools: t, db: db}
	defer func() {
		if err != nil {
			s.Close()
			err = u.scrubbed(err)
		}
	}()
	srv, err := ServerInfo(ctx, db, u.Kind)
	if err != nil {
		return nil, err
	}
	tc, err := CheckTool(ctx, t, srv)
	if err != nil {
		return nil, err
	}
	s.info = Info{Kind: u.Kind, ServerVersion: srv.Version, DumpTool: tc.Version, Format: FormatSQL}
	if u.Kind == MySQL {
		names, err := tables(ctx, db, u.Kind)
		if err != nil {
			return nil, err
		}
		// Migrations run only when Vaultwarden starts, so outside the dump's
		// snapshot is still the same version.
		if s.info.Migration, err = migration(ctx, db, u.Kind, names); err != nil {
			return nil, err
		}
		return s, nil
	}
	s.info.Format = FormatPGCustom
	if s.conn, err = db.Conn(ctx); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if s.tx, err = s.conn.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}); err != nil {
		return nil, fmt.Errorf("begin snapshot transaction: %w", err)
	}
	if err := s.tx.QueryRowContext(ctx, "SELECT pg_export_snapshot(), pg_current_snapshot()::text").Scan(&s.id, &s.info.Snapshot); err != nil {
		return nil, fmt.Errorf("export snapshot: %w", err)
	}
	names, err := tables(ctx, s.tx, u.Kind)
	if err != nil {
		return nil, err
	}
	if s.info.Migration, err = migration(ctx, s.tx, u.Kind, names); err != nil {
		return nil, err
	}
	if s.info.Tables, err = countTables(ctx, s.tx, u.Kind); err != nil {
		return nil, err
	}
	if _, ok := s.info.Tables["attachments"]; ok {
		if s.rows, err = attachmentRows(ctx, s.tx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func attachmentRows(ctx context.Context, q queryer) ([]AttachmentRow, error) {
	rows, err := q.QueryContext(ctx, "SELECT cipher_uuid, id, file_size FROM attachments")
	if err != nil {
		return nil, fmt.Errorf("read attachments: %w", err)
	}
	defer rows.Close()
	var out []AttachmentRow
	for rows.Next() {
		var cipher, id string
		var size int64
		if err := rows.Scan(&cipher, &id, &size); err != nil {
			return nil, fmt.Errorf("read attachments: %w", err)
		}
		out = append(out, AttachmentRow{Path: path.Join("attachments", cipher, id), Size: size})
	}
	return out, rows.Err()
}

// Attachments are the attachment rows of the snapshot: on PostgreSQL read in
// Begin, on MySQL read from the dump stream, so complete once WriteTo returned.
func (s *Snapshot) Attachments() []AttachmentRow { return s.rows }

// Info is complete once WriteTo returned without error.
func (s *Snapshot) Info() Info { return s.info }

// WriteTo streams the dump into w: pg_dump's custom format uncompressed (the
// archive compresses it once), or mysqldump's SQL. It can be called once.
func (s *Snapshot) WriteTo(ctx context.Context, w io.Writer) error {
	if s.done {
		return errors.New("dump already written")
	}
	s.done = true
	if s.u.Kind == PostgreSQL {
		args := []string{"--format=custom", "--compress=0", "--no-password", "--snapshot=" + s.id, "--dbname=" + s.u.conninfo()}
		if err := s.u.run(ctx, s.tools.Dump, args, nil, w); err != nil {
			return fmt.Errorf("dump: %w", err)
		}
		return nil
	}
	counter := newInsertCounter()
	args := append(s.u.mysqlArgs(), "--single-transaction", "--routines", "--events", "--triggers",
		"--hex-blob", "--quick", "--skip-lock-tables", "--no-tablespaces", "--default-character-set=utf8mb4", s.u.Database)
	if err := s.u.run(ctx, s.tools.Dump, args, nil, io.MultiWriter(w, counter)); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	if err := counter.err(); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	s.info.Tables = counter.counts
	s.rows = counter.rows
	return nil
}

// Close ends the snapshot transaction and disconnects.
func (s *Snapshot) Close() error {
	var errs []error
	if s.tx != nil {
		if err := s.tx.Rollback(); !errors.Is(err, sql.ErrTxDone) {
			errs = append(errs, err)
		}
	}
	if s.conn != nil {
		errs = append(errs, s.conn.Close())
	}
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	s.tx, s.conn, s.db = nil, nil, nil
	return errors.Join(errs...)
}
