package dbrepl

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/superfly/ltx"
)

// reencode rewrites an LTX file with valid file checksums, checksum tracking
// on and the given post-apply checksum, as a writer with a bug could.
func reencode(t *testing.T, b []byte, postApply ltx.Checksum) []byte {
	t.Helper()
	dec := ltx.NewDecoder(bytes.NewReader(b))
	if err := dec.DecodeHeader(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	enc, err := ltx.NewEncoder(&out)
	if err != nil {
		t.Fatal(err)
	}
	hdr := dec.Header()
	hdr.Flags &^= ltx.HeaderFlagNoChecksum
	if !hdr.IsSnapshot() {
		hdr.PreApplyChecksum = ltx.ChecksumFlag | 1 // required; nothing in a restore reads it
	}
	if err := enc.EncodeHeader(hdr); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, dec.Header().PageSize)
	for {
		var ph ltx.PageHeader
		if err := dec.DecodePage(&ph, data); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if err := enc.EncodePage(ph, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := dec.Close(); err != nil {
		t.Fatal(err)
	}
	enc.SetPostApplyChecksum(postApply)
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// A plan whose files are each intact but whose pages do not add up to the
// database state the last file records is refused, as litestream's own
// restore refuses it.
func TestRestore_PostApplyChecksumMismatch(t *testing.T) {
	store, _ := replicateBatches(t, 3)
	keys := store.keys("db/0000/")
	last := keys[len(keys)-1]

	// The state after the last file, as litestream's checksum records it.
	out := filepath.Join(t.TempDir(), "db.sqlite3")
	if _, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ltx.ChecksumReader(f, 4096)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	orig := slices.Clone(store.objs[last].data)

	// With the right checksum the plan restores: the rewrite is faithful.
	store.mutate(last, func([]byte) []byte { return reencode(t, orig, want) })
	out = filepath.Join(t.TempDir(), "db.sqlite3")
	if _, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out}); err != nil {
		t.Fatalf("restore of a faithfully re-encoded replica: %v", err)
	}
	if got, want := itemIDs(t, out), seq(0, 300); !slices.Equal(got, want) {
		t.Fatalf("restored %d rows, want %d", len(got), len(want))
	}

	store.mutate(last, func([]byte) []byte { return reencode(t, orig, want^0x1234) })
	out = filepath.Join(t.TempDir(), "db.sqlite3")
	_, err = Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out})
	if err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("restore with a wrong post-apply checksum: %v, want a checksum error", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("refused restore left a database behind")
	}
}

// A restore writes pages in runs of consecutive numbers: a snapshot of more
// than one run, then files whose pages are scattered over it (rows updated
// every few pages, pages freed and reused), must give back the source's every
// row, its page count and an intact file.
func TestRestore_PagesWrittenInRunsMatchTheSource(t *testing.T) {
	store := newMemStore()
	path := tempDB(t)
	db := openTestDB(t, path)
	r := startReplicator(t, path, store)
	const rows = 3000 // ~1.6 MB of 4 KB pages: several runs of writeRunPages
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for id := range rows {
		if _, err := tx.Exec(`INSERT INTO items (id, body) VALUES (?, hex(randomblob(250)))`, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	for step := range 4 {
		stmts := []string{
			`UPDATE items SET body = hex(randomblob(250)) WHERE id % 37 = ?`,
			`DELETE FROM items WHERE id % 101 = ?`,
		}
		for _, q := range stmts {
			if _, err := db.Exec(q, step); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Exec(`INSERT INTO items (id, body) VALUES (?, hex(randomblob(900)))`, rows+step); err != nil {
			t.Fatal(err)
		}
		if err := r.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "restored.sqlite3")
	res, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files < 2 {
		t.Fatalf("plan of %d files; the test needs a snapshot and later files", res.Files)
	}
	summary := func(p string) string {
		d, err := sql.Open("sqlite", "file:"+p+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		var n, pages int64
		var sum string
		if err := d.QueryRow(`SELECT count(*), coalesce(sum(length(body)), 0) || ':' || coalesce(group_concat(substr(body, 1, 8), ''), '') FROM (SELECT body FROM items ORDER BY id)`).Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		if err := d.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d rows, %d pages, %x", n, pages, sha256.Sum256([]byte(sum)))
	}
	if got, want := summary(out), summary(path); got != want {
		t.Fatalf("restored %s, source %s", got, want)
	}
}
