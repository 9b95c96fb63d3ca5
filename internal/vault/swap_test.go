package vault

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// tree reads every file under dir (relative path -> contents), skipping nothing.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func write(t *testing.T, files map[string]string, dir string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

var (
	oldData = map[string]string{"db.sqlite3": "old db", "db.sqlite3-wal": "old wal", "attachments/c1/a1": "old a1", "config.json": "old config", NodeIDFile: "0123456789abcdef\n"}
	newData = map[string]string{"db.sqlite3": "new db", "attachments/c2/a2": "new a2", "rsa_key.pem": "new key"}
)

// want is the folder after a complete swap: the new data and the old node id.
func want() map[string]string {
	w := map[string]string{NodeIDFile: oldData[NodeIDFile]}
	for k, v := range newData {
		w[k] = v
	}
	return w
}

// A swap moves the new data in, drops the old and keeps the node id.
func TestStaging_SwapIn(t *testing.T) {
	dir := t.TempDir()
	write(t, oldData, dir)
	s, err := NewStaging(dir)
	if err != nil {
		t.Fatal(err)
	}
	write(t, newData, s.Path())
	if err := s.SwapIn(nil); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, dir); !mapsEqual(got, want()) {
		t.Fatalf("after swap: %v, want %v", got, want())
	}
}

// A swap stopped after any of its renames, as by a kill -9, is completed by
// Recover; one stopped before its commit leaves the old data, and Recover
// removes the staged copy.
func TestRecover_InterruptedSwap(t *testing.T) {
	renames := len(oldData) - 1 /* node id stays */ + 3 /* top-level new entries */
	for stop := 0; stop <= renames; stop++ {
		dir := t.TempDir()
		write(t, oldData, dir)
		s, err := NewStaging(dir)
		if err != nil {
			t.Fatal(err)
		}
		write(t, newData, s.Path())
		n := 0
		testHookMoved = func() {
			n++
			if n == stop {
				runtime.Goexit() // the process dies here: nothing after this rename runs
			}
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.SwapIn(nil) }()
		wg.Wait()
		testHookMoved = func() {}
		if err := Recover(dir, nil); err != nil {
			t.Fatalf("stop after %d renames: recover: %v", stop, err)
		}
		if got := tree(t, dir); !mapsEqual(got, want()) {
			t.Fatalf("stop after %d renames: recovered folder %v, want %v", stop, got, want())
		}
	}

	// Killed while staging (before the commit): the old data stays, the
	// staged (decrypted) copy goes.
	dir := t.TempDir()
	write(t, oldData, dir)
	s, err := NewStaging(dir)
	if err != nil {
		t.Fatal(err)
	}
	write(t, newData, s.Path())
	if err := Recover(dir, nil); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, dir); !mapsEqual(got, oldData) {
		t.Fatalf("recovered uncommitted restore: %v, want the old data %v", got, oldData)
	}
}

// A swap keeps the entries keep claims.
func TestStaging_SwapInKeeps(t *testing.T) {
	dir := t.TempDir()
	write(t, oldData, dir)
	write(t, map[string]string{"icon_cache/x.png": "icon"}, dir)
	s, err := NewStaging(dir)
	if err != nil {
		t.Fatal(err)
	}
	write(t, newData, s.Path())
	if err := s.SwapIn(func(name string) bool { return name == "icon_cache" }); err != nil {
		t.Fatal(err)
	}
	got := tree(t, dir)
	w := want()
	w["icon_cache/x.png"] = "icon"
	if !mapsEqual(got, w) {
		t.Fatalf("after swap: %v, want %v", got, w)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if v, ok := b[k]; !ok || v != a[k] {
			return false
		}
	}
	return true
}
