package vaultsim

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
)

// Server database kinds, as internal/serverdb names them.
const (
	KindPostgreSQL = "postgresql"
	KindMySQL      = "mysql"
)

// serverSchema is Vaultwarden's schema on a server database, a representative subset of the tables its migrations
// (migrations/postgresql and migrations/mysql) create, written for each server
// with the column types those migrations use.
var serverSchema = map[string][]string{
	KindPostgreSQL: {
		`CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)`,
		`CREATE TABLE users (uuid VARCHAR(40) NOT NULL PRIMARY KEY, created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL,
			email VARCHAR(255) NOT NULL UNIQUE, name TEXT NOT NULL, password_hash BYTEA NOT NULL, salt BYTEA NOT NULL,
			password_iterations INTEGER NOT NULL, akey TEXT NOT NULL, security_stamp TEXT NOT NULL,
			equivalent_domains TEXT NOT NULL, excluded_globals TEXT NOT NULL)`,
		`CREATE TABLE organizations (uuid VARCHAR(40) NOT NULL PRIMARY KEY, name TEXT NOT NULL, billing_email TEXT NOT NULL,
			private_key TEXT, public_key TEXT)`,
		`CREATE TABLE ciphers (uuid VARCHAR(40) NOT NULL PRIMARY KEY, created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL,
			user_uuid VARCHAR(40) REFERENCES users (uuid), organization_uuid VARCHAR(40) REFERENCES organizations (uuid),
			atype INTEGER NOT NULL, name TEXT NOT NULL, notes TEXT, fields TEXT, data TEXT NOT NULL,
			password_history TEXT, deleted_at TIMESTAMP, reprompt INTEGER)`,
		`CREATE TABLE attachments (id TEXT NOT NULL PRIMARY KEY, cipher_uuid VARCHAR(40) NOT NULL REFERENCES ciphers (uuid),
			file_name TEXT NOT NULL, file_size BIGINT NOT NULL, akey TEXT)`,
		`CREATE TABLE folders (uuid VARCHAR(40) NOT NULL PRIMARY KEY, created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL,
			user_uuid VARCHAR(40) NOT NULL REFERENCES users (uuid), name TEXT NOT NULL)`,
		`CREATE TABLE folders_ciphers (cipher_uuid VARCHAR(40) NOT NULL REFERENCES ciphers (uuid),
			folder_uuid VARCHAR(40) NOT NULL REFERENCES folders (uuid), PRIMARY KEY (cipher_uuid, folder_uuid))`,
	},
	KindMySQL: {
		`CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)`,
		`CREATE TABLE users (uuid CHAR(36) NOT NULL PRIMARY KEY, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL,
			email VARCHAR(255) NOT NULL UNIQUE, name TEXT NOT NULL, password_hash BLOB NOT NULL, salt BLOB NOT NULL,
			password_iterations INTEGER NOT NULL, akey TEXT NOT NULL, security_stamp TEXT NOT NULL,
			equivalent_domains TEXT NOT NULL, excluded_globals TEXT NOT NULL) CHARACTER SET utf8mb4`,
		`CREATE TABLE organizations (uuid CHAR(36) NOT NULL PRIMARY KEY, name TEXT NOT NULL, billing_email TEXT NOT NULL,
			private_key TEXT, public_key TEXT) CHARACTER SET utf8mb4`,
		`CREATE TABLE ciphers (uuid CHAR(36) NOT NULL PRIMARY KEY, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL,
			user_uuid CHAR(36) REFERENCES users (uuid), organization_uuid CHAR(36) REFERENCES organizations (uuid),
			atype INTEGER NOT NULL, name TEXT NOT NULL, notes TEXT, fields TEXT, data TEXT NOT NULL,
			password_history TEXT, deleted_at DATETIME, reprompt INTEGER) CHARACTER SET utf8mb4`,
		`CREATE TABLE attachments (id CHAR(36) NOT NULL PRIMARY KEY, cipher_uuid CHAR(36) NOT NULL REFERENCES ciphers (uuid),
			file_name TEXT NOT NULL, file_size BIGINT NOT NULL, akey TEXT) CHARACTER SET utf8mb4`,
		`CREATE TABLE folders (uuid CHAR(36) NOT NULL PRIMARY KEY, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL,
			user_uuid CHAR(36) NOT NULL REFERENCES users (uuid), name TEXT NOT NULL) CHARACTER SET utf8mb4`,
		`CREATE TABLE folders_ciphers (cipher_uuid CHAR(36) NOT NULL REFERENCES ciphers (uuid),
			folder_uuid CHAR(36) NOT NULL REFERENCES folders (uuid), PRIMARY KEY (cipher_uuid, folder_uuid)) CHARACTER SET utf8mb4`,
	},
}

// ServerMigrations are versions Vaultwarden's migrations carry (a date and
// time), recorded in __diesel_schema_migrations; the last is the newest.
var ServerMigrations = []string{"2018-01-14-171611", "2021-04-30-233251", "2024-03-13-170000"}

const userUUID = "00000000-0000-4000-8000-000000000001"

// CreateServerVault creates the schema in db (kind KindPostgreSQL or
// KindMySQL) with one user, one organization and seed ciphers, each in its
// folder; the quotes, backslashes and parentheses in the data exercise a
// dump's escaping.
func CreateServerVault(ctx context.Context, db *sql.DB, kind string, seed int) error {
	for _, q := range serverSchema[kind] {
		if err := exec(ctx, db, q); err != nil {
			return err
		}
	}
	for _, v := range ServerMigrations {
		if err := exec(ctx, db, fmt.Sprintf("INSERT INTO __diesel_schema_migrations (version) VALUES ('%s')", v)); err != nil {
			return err
		}
	}
	bin := "'\\x00ff'"
	if kind == KindMySQL {
		bin = "x'00ff'"
	}
	if err := exec(ctx, db, fmt.Sprintf(`INSERT INTO users VALUES ('%s', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP,
		'a@example.com', 'Alice', %s, %s, 600000, 'akey', 'stamp', '[]', '[]')`, userUUID, bin, bin)); err != nil {
		return err
	}
	if err := exec(ctx, db, "INSERT INTO organizations VALUES ('00000000-0000-4000-8000-0000000000aa', 'Org (test)', 'o@example.com', NULL, NULL)"); err != nil {
		return err
	}
	for i := 0; i < seed; i++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := writeTx(ctx, tx, "seed", i); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

func exec(ctx context.Context, db *sql.DB, q string) error {
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(strings.Fields(q)[:3], " "), err)
	}
	return nil
}

// ServerCipherID is the uuid of the cipher of transaction i of a series
// ("seed" for CreateServerVault, "work" for ServerWorkload).
func ServerCipherID(series string, i int) string {
	return fmt.Sprintf("%s-%08d-4000-8000-%012d", series[:min(len(series), 4)], i, i)[:36]
}

func folderID(series string, i int) string { return "f" + ServerCipherID(series, i)[1:] }

// AddServerAttachment records an attachment of the seed cipher i, as
// Vaultwarden does before it writes the file attachments/<cipher>/<id>.
func AddServerAttachment(ctx context.Context, db *sql.DB, i int, id string, size int64) error {
	return exec(ctx, db, fmt.Sprintf("INSERT INTO attachments VALUES ('%s', '%s', 'file %d.bin', %d, 'akey')", id, ServerCipherID("seed", i), i, size))
}

// writeTx is one Vaultwarden-like write: a cipher in a new folder, linked.
func writeTx(ctx context.Context, tx *sql.Tx, series string, i int) error {
	c, f := ServerCipherID(series, i), folderID(series, i)
	for _, q := range []string{
		fmt.Sprintf("INSERT INTO folders VALUES ('%s', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, '%s', 'folder %d')", f, userUUID, i),
		fmt.Sprintf(`INSERT INTO ciphers (uuid, created_at, updated_at, user_uuid, atype, name, data)
			VALUES ('%s', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, '%s', 1, 'it''s (%d) \\ ok;', '{"n":%d,"s":"a'',(b);\n"}')`, c, userUUID, i, i),
		fmt.Sprintf("INSERT INTO folders_ciphers VALUES ('%s', '%s')", c, f),
		"UPDATE users SET updated_at = CURRENT_TIMESTAMP",
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// ServerLedger records ServerWorkload's transactions: started before the
// commit is sent, acknowledged once it returned, with PostgreSQL's
// transaction id (pg_current_xact_id) for checking visibility in a snapshot.
type ServerLedger struct {
	mu      sync.Mutex
	started int
	acked   []bool
	xid     []string
}

// Counts are the transactions started and acknowledged so far.
func (l *ServerLedger) Counts() (started, acked int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.acked {
		if a {
			acked++
		}
	}
	return l.started, acked
}

// Entries returns, for every transaction written, whether it was
// acknowledged and its PostgreSQL transaction id.
func (l *ServerLedger) Entries() (acked []bool, xid []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]bool(nil), l.acked...), append([]string(nil), l.xid...)
}

// StartServerWorkload runs ServerWorkload in the background until stop is
// called; stop returns the workload's error.
func StartServerWorkload(ctx context.Context, db *sql.DB, kind string) (l *ServerLedger, stop func() error) {
	l = &ServerLedger{}
	quit := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- ServerWorkload(ctx, db, kind, quit, l) }()
	return l, func() error { close(quit); return <-done }
}

// ServerWorkload writes transactions (ServerCipherID("work", i)) one after
// the other into l until stop is closed; it returns the first error.
func ServerWorkload(ctx context.Context, db *sql.DB, kind string, stop <-chan struct{}, l *ServerLedger) error {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return nil
		default:
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := writeTx(ctx, tx, "work", i); err != nil {
			tx.Rollback()
			return err
		}
		var xid string
		if kind == KindPostgreSQL {
			if err := tx.QueryRowContext(ctx, "SELECT pg_current_xact_id()::text").Scan(&xid); err != nil {
				tx.Rollback()
				return err
			}
		}
		l.mu.Lock()
		l.started = i + 1
		l.acked = append(l.acked, false)
		l.xid = append(l.xid, xid)
		l.mu.Unlock()
		if err := tx.Commit(); err != nil {
			return err
		}
		l.mu.Lock()
		l.acked[i] = true
		l.mu.Unlock()
	}
}

// VerifyServerRestore checks a restored database against the ledger and
// returns how many workload transactions it holds. Every transaction must be
// whole (folder, cipher and link all present or all absent). On PostgreSQL a
// transaction is restored exactly when the dump's snapshot (pg_current_snapshot
// text, asked of source) shows it; on MySQL, whose snapshot point is
// mysqldump's own, the single writer's transactions restored form a prefix
// holding every one acknowledged before the dump began (ackedBefore) and none
// started after it ended (startedAfter).
func VerifyServerRestore(ctx context.Context, source, restored *sql.DB, kind string, l *ServerLedger, snapshot string, ackedBefore, startedAfter int) (int, error) {
	present := map[int]int{}
	for _, q := range []string{
		"SELECT uuid FROM ciphers WHERE uuid LIKE 'work-%'",
		"SELECT uuid FROM folders WHERE uuid LIKE 'fork-%'",
		"SELECT cipher_uuid FROM folders_ciphers WHERE cipher_uuid LIKE 'work-%'",
	} {
		rows, err := restored.QueryContext(ctx, q)
		if err != nil {
			return 0, err
		}
		for rows.Next() {
			var id string
			var i int
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return 0, err
			}
			if _, err := fmt.Sscanf(id[5:13], "%d", &i); err != nil {
				rows.Close()
				return 0, fmt.Errorf("restored id %q: %w", id, err)
			}
			present[i]++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
	}
	acked, xids := l.Entries()
	var problems []string
	for i, a := range acked {
		if !a {
			return 0, fmt.Errorf("transaction %d was never acknowledged", i)
		}
		in := present[i] == 3
		if present[i] != 0 && !in {
			problems = append(problems, fmt.Sprintf("transaction %d restored in part", i))
		}
		want := in
		if kind == KindPostgreSQL {
			if err := source.QueryRowContext(ctx, "SELECT pg_visible_in_snapshot($1::text::xid8, $2::text::pg_snapshot)", xids[i], snapshot).Scan(&want); err != nil {
				return 0, err
			}
		} else {
			switch {
			case i < ackedBefore && !in:
				problems = append(problems, fmt.Sprintf("transaction %d was acknowledged before the dump began but is missing", i))
			case i >= startedAfter && in:
				problems = append(problems, fmt.Sprintf("transaction %d started after the dump ended but is restored", i))
			case i > 0 && in && present[i-1] != 3:
				problems = append(problems, fmt.Sprintf("transaction %d is restored but %d is not", i, i-1))
			}
		}
		if in != want {
			problems = append(problems, fmt.Sprintf("transaction %d (xid %s): restored %v, in the dump's snapshot %v", i, xids[i], in, want))
		}
		if len(problems) > 5 {
			break
		}
	}
	if len(problems) > 0 {
		return 0, fmt.Errorf("restored database disagrees with the ledger: %s", strings.Join(problems, "; "))
	}
	n := len(present)
	if n == 0 || n == len(acked) {
		return n, fmt.Errorf("%d of %d transactions restored: the dump did not fall inside the workload", n, len(acked))
	}
	return n, nil
}
