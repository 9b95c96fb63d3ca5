package restore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/restore"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// replicated builds a small vault, replicates it to a local-folder store and
// returns the store, the store's folder and the ledger of committed transactions.
func replicated(t *testing.T) (objstore.Store, string, string) {
	t.Helper()
	work := t.TempDir()
	v, err := vaultsim.Create(filepath.Join(work, "data"), vaultsim.Options{Seed: 5, Size: "small"})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	root := filepath.Join(work, "target")
	store, err := objstore.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := dbrepl.New(dbrepl.Options{DBPath: v.DBPath(), Store: store, SyncInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ledger := filepath.Join(work, "ledger")
	if _, err := vaultsim.NewWorkload(v, vaultsim.WorkloadOptions{Rate: -1, Count: 40, Ledger: ledger}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return store, root, ledger
}

// tree lists every path under dir with its size, to compare folders.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		lines = append(lines, rel+" "+fi.Mode().String()+" "+string(rune('0'+fi.Size()%10)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestReplica_IntoEmptyFolder(t *testing.T) {
	store, _, ledger := replicated(t)
	dir := filepath.Join(t.TempDir(), "new")
	res, err := restore.Replica(context.Background(), restore.Options{Store: store, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Database, filepath.Join(dir, "db.sqlite3"); got != want {
		t.Fatalf("Database = %q, want %q", got, want)
	}
	if rep, err := vaultsim.Verify(res.Database, ledger, time.Now()); err != nil {
		t.Fatalf("verify: %v (%+v)", err, rep)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".vwstream-") {
			t.Errorf("staging left behind: %s", e.Name())
		}
	}
}

func TestReplica_RefusesNonEmptyWithoutForce(t *testing.T) {
	store, _, ledger := replicated(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"old":true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	before := tree(t, dir)
	_, err := restore.Replica(context.Background(), restore.Options{Store: store, Dir: dir})
	if !errors.Is(err, restore.ErrNotEmpty) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("err = %v, want ErrNotEmpty naming --force", err)
	}
	if after := tree(t, dir); after != before {
		t.Fatalf("folder changed:\n%s\nwas\n%s", after, before)
	}

	// With Force the old entries are replaced and nothing of them is left.
	res, err := restore.Replica(context.Background(), restore.Options{Store: store, Dir: dir, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Replaced {
		t.Error("Replaced = false")
	}
	if _, err := os.Stat(filepath.Join(dir, "config.json")); !os.IsNotExist(err) {
		t.Errorf("old config.json still there: %v", err)
	}
	if rep, err := vaultsim.Verify(res.Database, ledger, time.Now()); err != nil {
		t.Fatalf("verify: %v (%+v)", err, rep)
	}
}

func TestReplica_FailureLeavesFolderUntouched(t *testing.T) {
	store, root, _ := replicated(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "db.sqlite3"), []byte("the old database"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := tree(t, dir)

	// A files step that fails: the database was restored, but nothing moves.
	_, err := restore.Replica(context.Background(), restore.Options{Store: store, Dir: dir, Force: true,
		Files: func(context.Context, string) (int, error) { return 0, errors.New("listing files/: connection reset") }})
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("err = %v, want the files failure", err)
	}
	if after := tree(t, dir); after != before {
		t.Fatalf("folder changed after a failed files step:\n%s", after)
	}

	// A damaged replica object.
	var ltx []string
	_ = filepath.Walk(filepath.Join(root, "db"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".ltx") {
			ltx = append(ltx, p)
		}
		return nil
	})
	if len(ltx) == 0 {
		t.Fatal("no LTX files in the store")
	}
	for _, p := range ltx {
		if err := os.Truncate(p, 40); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := restore.Replica(context.Background(), restore.Options{Store: store, Dir: dir, Force: true}); err == nil {
		t.Fatal("restore from truncated LTX files succeeded")
	}
	if after := tree(t, dir); after != before {
		t.Fatalf("folder changed after a failed restore:\n%s", after)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "db.sqlite3"))
	if string(got) != "the old database" {
		t.Fatalf("old database changed: %q", got)
	}
}

// TestReplica_KeepOthers: a secondary's pull replaces what the replica holds and
// the old database's WAL, and keeps what only the folder has (icon_cache).
func TestReplica_KeepOthers(t *testing.T) {
	store, _, ledger := replicated(t)
	dir := t.TempDir()
	for name, body := range map[string]string{"db.sqlite3": "old", "db.sqlite3-wal": "old wal", "icon_cache/site.png": "icon"} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	res, err := restore.Replica(context.Background(), restore.Options{Store: store, Dir: dir, Force: true, KeepOthers: true})
	if err != nil {
		t.Fatal(err)
	}
	// The pull leaves a WAL of its own beside the database (dbrepl's seed),
	// never the old database's.
	if b, err := os.ReadFile(filepath.Join(dir, "db.sqlite3-wal")); err == nil && string(b) == "old wal" {
		t.Error("the old database's WAL survived the swap")
	}
	if rep, err := vaultsim.Verify(res.Database, ledger, time.Now()); err != nil {
		t.Fatalf("verify: %v (%+v)", err, rep)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "icon_cache", "site.png")); err != nil || string(b) != "icon" {
		t.Errorf("local-only icon_cache lost: %q, %v", b, err)
	}
}
