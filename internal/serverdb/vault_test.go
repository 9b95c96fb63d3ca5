package serverdb_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/vwstream/vwstream/internal/serverdb"
)

// Vaultwarden's schema, a representative subset of the tables its migrations
// (migrations/postgresql and migrations/mysql) create, written for each server
// with the column types those migrations use.
var schema = map[string][]string{
	serverdb.PostgreSQL: {
		`CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)`,
		`CREATE TABLE users (uuid CHAR(36) NOT NULL PRIMARY KEY, created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL,
			email VARCHAR(255) NOT NULL UNIQUE, name TEXT NOT NULL, password_hash BYTEA NOT NULL, salt BYTEA NOT NULL,
			password_iterations INTEGER NOT NULL, akey TEXT NOT NULL, security_stamp TEXT NOT NULL,
			equivalent_domains TEXT NOT NULL, excluded_globals TEXT NOT NULL)`,
		`CREATE TABLE organizations (uuid CHAR(36) NOT NULL PRIMARY KEY, name TEXT NOT NULL, billing_email TEXT NOT NULL,
			private_key TEXT, public_key TEXT)`,
		`CREATE TABLE ciphers (uuid CHAR(36) NOT NULL PRIMARY KEY, created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL,
			user_uuid CHAR(36) REFERENCES users (uuid), organization_uuid CHAR(36) REFERENCES organizations (uuid),
			atype INTEGER NOT NULL, name TEXT NOT NULL, notes TEXT, fields TEXT, data TEXT NOT NULL,
			password_history TEXT, deleted_at TIMESTAMP, reprompt INTEGER)`,
		`CREATE TABLE attachments (id CHAR(36) NOT NULL PRIMARY KEY, cipher_uuid CHAR(36) NOT NULL REFERENCES ciphers (uuid),
			file_name TEXT NOT NULL, file_size BIGINT NOT NULL, akey TEXT)`,
		`CREATE TABLE folders (uuid CHAR(36) NOT NULL PRIMARY KEY, created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL,
			user_uuid CHAR(36) NOT NULL REFERENCES users (uuid), name TEXT NOT NULL)`,
		`CREATE TABLE folders_ciphers (cipher_uuid CHAR(36) NOT NULL REFERENCES ciphers (uuid),
			folder_uuid CHAR(36) NOT NULL REFERENCES folders (uuid), PRIMARY KEY (cipher_uuid, folder_uuid))`,
	},
	serverdb.MySQL: {
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

// migrationVersions are versions Vaultwarden's migrations carry (a date and time).
var migrationVersions = []string{"2018-01-14-171611", "2021-04-30-233251", "2024-03-13-170000"}

const userUUID = "00000000-0000-4000-8000-000000000001"

// vault creates the schema in db with one user and seed ciphers (the quotes,
// backslashes and parentheses in the data exercise the dump's escaping).
func vault(t testing.TB, ctx context.Context, db *sql.DB, kind string, seed int) {
	t.Helper()
	for _, q := range schema[kind] {
		mustExec(t, ctx, db, q)
	}
	for _, v := range migrationVersions {
		mustExec(t, ctx, db, fmt.Sprintf("INSERT INTO __diesel_schema_migrations (version) VALUES ('%s')", v))
	}
	bin := "'\\x00ff'"
	if kind == serverdb.MySQL {
		bin = "x'00ff'"
	}
	mustExec(t, ctx, db, fmt.Sprintf(`INSERT INTO users VALUES ('%s', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP,
		'a@example.com', 'Alice', %s, %s, 600000, 'akey', 'stamp', '[]', '[]')`, userUUID, bin, bin))
	mustExec(t, ctx, db, "INSERT INTO organizations VALUES ('00000000-0000-4000-8000-0000000000aa', 'Org (test)', 'o@example.com', NULL, NULL)")
	for i := 0; i < seed; i++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeTx(ctx, tx, "seed", i); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

func mustExec(t testing.TB, ctx context.Context, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.ExecContext(ctx, q); err != nil {
		t.Fatalf("%s: %v", strings.Fields(q)[:3], err)
	}
}

// cipherID is the uuid of the cipher of transaction i of a series.
func cipherID(series string, i int) string {
	return fmt.Sprintf("%s-%08d-4000-8000-%012d", series[:min(len(series), 8)], i, i)[:36]
}

func folderID(series string, i int) string { return "f" + cipherID(series, i)[1:] }

// writeTx is one Vaultwarden-like write: a cipher in a new folder, linked.
func writeTx(ctx context.Context, tx *sql.Tx, series string, i int) error {
	c, f := cipherID(series, i), folderID(series, i)
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

// ledger records the workload's transactions: started before the commit is
// sent, acknowledged once it returned, with PostgreSQL's transaction id.
type ledger struct {
	mu      sync.Mutex
	started int
	acked   []bool
	xid     []string
}

func (l *ledger) counts() (started, acked int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.acked {
		if a {
			acked++
		}
	}
	return l.started, acked
}

// workload writes transactions one after the other until stop is closed,
// then returns the ledger. A failing transaction fails the test.
func workload(t testing.TB, ctx context.Context, db *sql.DB, kind string, stop <-chan struct{}, l *ledger) error {
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
		if kind == serverdb.PostgreSQL {
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
