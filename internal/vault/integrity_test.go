package vault_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/vwstream/vwstream/internal/vault"
)

// TestCheckIntegrity_FindsDamageThroughTheMap: the memory-mapped check still
// reads every page: a database with one b-tree page zeroed fails it, and the
// same database before the damage passes.
func TestCheckIntegrity_FindsDamageThroughTheMap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.sqlite3")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT NOT NULL, b BLOB NOT NULL)`,
		`CREATE INDEX t_s ON t(s)`,
		`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 5000)
			INSERT INTO t (s, b) SELECT hex(randomblob(16)), randomblob(200) FROM c`,
		`PRAGMA wal_checkpoint(TRUNCATE)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	var pageSize, pages int64
	if err := db.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := vault.CheckIntegrity(context.Background(), path); err != nil {
		t.Fatalf("intact database: %v", err)
	}

	// Zero a page in the middle of the file: a page of the table or the index.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, pageSize), (pages/2)*pageSize); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// SQLite says so either as the check's findings or, for a page it cannot
	// even parse, as SQLITE_CORRUPT: both are errors naming the check.
	err = vault.CheckIntegrity(context.Background(), path)
	if err == nil || !strings.Contains(err.Error(), "integrity") {
		t.Fatalf("damaged database (page %d of %d zeroed): %v, want an integrity failure", pages/2+1, pages, err)
	}
	t.Logf("damage found: %v", err)
}
