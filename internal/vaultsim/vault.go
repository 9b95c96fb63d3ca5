// Package vaultsim stands in for Vaultwarden in tests and benchmarks: it builds
// realistic data folders (db.sqlite3 with Vaultwarden's tables, attachments,
// sends, rsa_key.pem, config.json), runs Vaultwarden-shaped write workloads that
// keep a ledger of committed transactions, verifies restored databases against
// that ledger, and answers /alive like Vaultwarden does.
package vaultsim

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the only SQLite driver used in this project
)

// Names of the files and folders of a Vaultwarden data folder.
const (
	DBName         = "db.sqlite3"
	AttachmentsDir = "attachments"
	SendsDir       = "sends"
	RSAKeyName     = "rsa_key.pem"
	ConfigName     = "config.json"
	TmpDir         = "tmp"
	IconCacheDir   = "icon_cache"
)

// MaxConns is the size of Vaultwarden's connection pool.
const MaxConns = 10

// Vault is an open Vaultwarden-shaped data folder.
type Vault struct {
	// Dir is the data folder (DATA_FOLDER).
	Dir string
	// DB is a pool of connections each initialised like DATABASE_CONN_INIT.
	DB *sql.DB
}

// DSN returns the modernc.org/sqlite data source name Vaultwarden's settings map to:
// WAL journal, busy_timeout 5000 and synchronous NORMAL on every connection, and
// immediate transactions so writers queue on the busy handler instead of failing
// a lock upgrade. wal_autocheckpoint stays at SQLite's default; no TRUNCATE
// checkpoint is ever run because Litestream holds a read transaction.
func DSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

// OpenDB opens the SQLite database at path with Vaultwarden's connection settings.
func OpenDB(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(MaxConns)
	db.SetMaxIdleConns(MaxConns)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	return db, nil
}

// Open reopens the data folder dir that Create built (or a restored copy of it).
func Open(dir string) (*Vault, error) {
	path := filepath.Join(dir, DBName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open vault: %w", err)
	}
	db, err := OpenDB(path)
	if err != nil {
		return nil, fmt.Errorf("open vault: %w", err)
	}
	return &Vault{Dir: dir, DB: db}, nil
}

// DBPath returns the path of the vault's database file.
func (v *Vault) DBPath() string { return filepath.Join(v.Dir, DBName) }

// Close closes the database; SQLite checkpoints the WAL (PASSIVE) when the last
// connection closes.
func (v *Vault) Close() error {
	if err := v.DB.Close(); err != nil {
		return fmt.Errorf("close vault: %w", err)
	}
	return nil
}

// AttachmentPath returns where Vaultwarden keeps attachment id of cipher cipherUUID.
func (v *Vault) AttachmentPath(cipherUUID, id string) string {
	return filepath.Join(v.Dir, AttachmentsDir, cipherUUID, id)
}

// SendPath returns where Vaultwarden keeps the file fileID of send sendUUID.
func (v *Vault) SendPath(sendUUID, fileID string) string {
	return filepath.Join(v.Dir, SendsDir, sendUUID, fileID)
}
