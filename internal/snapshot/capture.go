package snapshot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vwstream/vwstream/internal/serverdb"
	"github.com/vwstream/vwstream/internal/vault"
	_ "modernc.org/sqlite" // the project's only SQLite driver (litestream registers it too)
)

// DBEntry is the database's name inside an archive.
const DBEntry = "db.sqlite3"

// mainTables are counted into the manifest when they exist.
var mainTables = []string{"users", "ciphers", "attachments", "folders", "organizations",
	"collections", "sends", "devices", "twofactor", "users_organizations"}

// SourcesEntry is the folder of a snapshot that holds the extra folders of
// BACKUP_SOURCES, each under its own name; a restore puts it back as it is.
const SourcesEntry = "sources/"

// Source is what a snapshot captures.
type Source struct {
	DataFolder string
	DBPath     string
	// Folders to include, keyed by their name in the archive ("attachments",
	// "sends", "icon_cache"); a missing folder is skipped.
	Folders map[string]string
	// Files to include (config.json, rsa_key.pem ...) keyed by archive name.
	Files map[string]string
	// AttachmentsFolder is checked against the attachments rows; empty when
	// attachments are not included (and then never make a snapshot degraded).
	AttachmentsFolder string
	// TempDir holds the spool while containers are stopped and the copy of a
	// database not in WAL mode while it is archived (a WAL database is
	// streamed, never copied); empty means the database's own folder (same
	// file system, so a copy that fits is likely).
	TempDir string
	// Server, when set, is the PostgreSQL or MySQL database to dump instead of
	// the SQLite file at DBPath; ServerTools the dump tools (empty: PATH).
	Server      *serverdb.URL
	ServerTools serverdb.Tools
}

// capture is a consistent database state plus the list of files to archive.
type capture struct {
	// stream reads the database's pages under one read transaction straight
	// into the archive (a WAL database: no copy on disk); nil otherwise.
	stream *dbStream
	dbCopy string // temporary copy of a database not in WAL mode ("" when streamed)
	dbSize int64  // bytes of dbCopy: the temporary disk the capture used
	db     DBInfo
	files  []entry            // archive name -> path on disk, in archive order
	rows   []attachment       // attachment rows of the captured state
	server *serverdb.Snapshot // a server database's open snapshot, dumped into the archive
	// checkRows: the server database's attachment rows are checked against
	// the archived files (attachments are included).
	checkRows bool
	cleanup   func() error
}

type entry struct {
	name string // archive name
	path string // on disk
}

type attachment struct {
	path string // archive name attachments/<cipher>/<id>
	size int64
}

// captureSource fixes a consistent state of the database, checks and counts
// it, then lists the files. Listing after the state is fixed means every
// attachment row in it whose upload had finished has its file listed.
//
// A WAL database (Vaultwarden's default, and what replication keeps it in) is
// not copied: a read transaction is opened and held, integrity_check, the
// counts and the attachment rows run inside it, and the archive later reads
// the same transaction's pages (dbStream), so the state archived is exactly
// the one checked while Vaultwarden goes on writing. A database in a
// rollback-journal mode is copied with VACUUM INTO into TempDir instead: a
// read transaction held there would block every writer for as long as the
// archive takes.
func captureSource(ctx context.Context, src Source) (c *capture, err error) {
	if src.Server != nil {
		return captureServer(ctx, src)
	}
	if _, err := os.Stat(src.DBPath); err != nil {
		return nil, fmt.Errorf("capture database: %w", err)
	}
	s, err := openStream(ctx, src.DBPath)
	if errors.Is(err, errNotWAL) {
		return captureCopy(ctx, src)
	}
	if err != nil {
		return nil, err
	}
	c = &capture{stream: s, cleanup: s.close}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.cleanup())
		}
	}()
	info, err := inspectDB(ctx, s.tx)
	if err != nil {
		return nil, fmt.Errorf("inspect database: %w", err)
	}
	c.db = info
	if info.Integrity != "ok" {
		return nil, fmt.Errorf("database fails integrity_check: %s", info.Integrity)
	}
	if c.rows, err = attachmentRows(ctx, s.tx, info); err != nil {
		return nil, fmt.Errorf("inspect database: %w", err)
	}
	if err := c.listFiles(src); err != nil {
		return nil, err
	}
	return c, nil
}

// captureCopy copies a database that is not in WAL mode with VACUUM INTO
// (one read transaction, so the copy is a consistent state), checks and
// counts the copy, then lists the files.
func captureCopy(ctx context.Context, src Source) (c *capture, err error) {
	dir := src.TempDir
	if dir == "" {
		dir = filepath.Dir(src.DBPath)
	}
	f, err := os.CreateTemp(dir, ".vwstream-snapshot-*.sqlite3")
	if err != nil {
		return nil, fmt.Errorf("capture database: temp file: %w", err)
	}
	tmp := f.Name()
	f.Close()
	c = &capture{dbCopy: tmp, cleanup: func() error {
		err := os.Remove(tmp)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.cleanup())
		}
	}()
	// VACUUM INTO refuses an existing non-empty file; the empty one we created
	// reserves the name.
	if err := vacuumInto(ctx, src.DBPath, tmp); err != nil {
		return nil, err
	}
	if err := c.inspectCopy(ctx); err != nil {
		return nil, err
	}
	fi, err := os.Stat(tmp)
	if err != nil {
		return nil, fmt.Errorf("capture database: %w", err)
	}
	c.dbSize = fi.Size()
	c.files = append(c.files, entry{name: DBEntry, path: tmp})
	if err := c.listFiles(src); err != nil {
		return nil, err
	}
	return c, nil
}

func vacuumInto(ctx context.Context, dbPath, dst string) error {
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("capture database: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return fmt.Errorf("capture database: vacuum into temp copy: %w", err)
	}
	return nil
}

// inspectCopy drops Litestream's bookkeeping tables from the copy (a restored
// database starts a new replica history), then runs integrity_check, counts the
// main tables and reads the attachment rows.
func (c *capture) inspectCopy(ctx context.Context) error {
	db, err := sql.Open("sqlite", "file:"+c.dbCopy+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return fmt.Errorf("inspect database copy: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, t := range []string{"_litestream_seq", "_litestream_lock"} {
		if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+t); err != nil {
			return fmt.Errorf("inspect database copy: %w", err)
		}
	}
	info, err := inspectDB(ctx, db)
	if err != nil {
		return fmt.Errorf("inspect database copy: %w", err)
	}
	c.db = info
	if info.Integrity != "ok" {
		return fmt.Errorf("database copy fails integrity_check: %s", info.Integrity)
	}
	if c.rows, err = attachmentRows(ctx, db, info); err != nil {
		return fmt.Errorf("inspect database copy: %w", err)
	}
	return nil
}

// attachmentRows reads the attachments table, when info counted one.
func attachmentRows(ctx context.Context, db vault.Querier, info DBInfo) ([]attachment, error) {
	if _, ok := info.Tables["attachments"]; !ok {
		return nil, nil
	}
	rows, err := db.QueryContext(ctx, "SELECT cipher_uuid, id, file_size FROM attachments")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []attachment
	for rows.Next() {
		var cipher, id string
		var size int64
		if err := rows.Scan(&cipher, &id, &size); err != nil {
			return nil, err
		}
		out = append(out, attachment{path: path.Join("attachments", cipher, id), size: size})
	}
	return out, rows.Err()
}

// inspectDB runs integrity_check and counts the main tables of db (inside a
// transaction: of its state).
func inspectDB(ctx context.Context, db queryRower) (DBInfo, error) {
	info := DBInfo{Path: DBEntry, Tables: map[string]int64{}}
	integrity, err := vault.Integrity(ctx, db)
	if err != nil {
		return info, err
	}
	info.Integrity = integrity
	for _, t := range mainTables {
		var n int64
		err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+t).Scan(&n)
		if err != nil {
			if strings.Contains(err.Error(), "no such table") {
				continue
			}
			return info, fmt.Errorf("count %s: %w", t, err)
		}
		info.Tables[t] = n
	}
	return info, nil
}

// queryRower is a *sql.DB or *sql.Tx.
type queryRower interface {
	vault.Querier
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// listFiles adds the included single files and the regular files under the
// included folders, sorted so archives of the same data are laid out alike.
func (c *capture) listFiles(src Source) error {
	var names []string
	for name := range src.Files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := src.Files[name]
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			c.files = append(c.files, entry{name: name, path: p})
		}
	}
	var folders []string
	for name := range src.Folders {
		folders = append(folders, name)
	}
	sort.Strings(folders)
	for _, name := range folders {
		root := src.Folders[name]
		// A folder configured as a symbolic link is walked at its target:
		// WalkDir does not descend into a link given as the root.
		if real, err := filepath.EvalSymlinks(root); err == nil {
			root = real
		}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // a folder Vaultwarden has not created yet, or a file just deleted
				}
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			c.files = append(c.files, entry{name: path.Join(name, filepath.ToSlash(rel)), path: p})
			return nil
		})
		if err != nil {
			return fmt.Errorf("list %s: %w", name, err)
		}
	}
	return nil
}

// SourceFromFolder is the Source of a Vaultwarden data folder with the default
// layout: db.sqlite3, attachments/, sends/, config.json and rsa_key*.
func SourceFromFolder(dir string) Source {
	return Source{
		DataFolder:        dir,
		DBPath:            filepath.Join(dir, DBEntry),
		Folders:           map[string]string{"attachments": filepath.Join(dir, "attachments"), "sends": filepath.Join(dir, "sends")},
		Files:             RSAAndConfig(dir, filepath.Join(dir, "rsa_key")),
		AttachmentsFolder: filepath.Join(dir, "attachments"),
	}
}

// RSAAndConfig maps config.json and the key files Vaultwarden versions write.
func RSAAndConfig(dataFolder, rsaBase string) map[string]string {
	base := filepath.Base(rsaBase)
	out := map[string]string{"config.json": filepath.Join(dataFolder, "config.json")}
	for _, ext := range []string{".pem", ".pub.pem", ".der", ".pub.der"} {
		out[base+ext] = rsaBase + ext
	}
	return out
}
