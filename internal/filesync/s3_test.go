package filesync_test

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/filesync"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// A file written is durable in the bucket within 3 s with the production
// stability wait, as seen by a plain S3 client rather than the process.
func TestSyncer_S3_DurableWithin3s(t *testing.T) {
	env := testenv.NewS3(t)
	dir := newVault(t, vaultsim.Options{Seed: 10})
	opts := fastOptions(dir, newS3(t, env, ""))
	opts.Debounce, opts.StableFor = filesync.DefaultDebounce, filesync.DefaultStableFor
	start := time.Now()
	s := open(t, opts)
	waitIdle(t, s, start)

	for i := range 3 {
		data := randomData(20<<10+i, byte(i))
		path := filepath.Join(dir, "attachments", "cipher-durable", "att"+string(rune('a'+i)))
		written := time.Now()
		writeFile(t, path, data)
		key := "vw/files/attachments/cipher-durable/att" + string(rune('a'+i))
		var got []byte
		waitFor(t, 3*time.Second, func() bool {
			var err error
			got, err = rawGet(t, env, key)
			return err == nil
		})
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: bucket holds %d bytes, want the %d written", key, len(got), len(data))
		}
		t.Logf("write to durable: %v", time.Since(written))
	}
	for _, k := range bucketKeys(t, env, "") {
		if !strings.HasPrefix(k, "vw/files/") || strings.Contains(k, "db.sqlite3") || strings.Contains(k, "/tmp/") || strings.Contains(k, "icon_cache") {
			t.Errorf("unexpected object %s", k)
		}
	}
}

// Deleting the whole attachments folder while syncing keeps the remote copy,
// sets status error and calls OnAlarm.
func TestSyncer_S3_MassDeletionGuard_FolderGone(t *testing.T) {
	env := testenv.NewS3(t)
	dir := newVault(t, vaultsim.Options{Seed: 11})
	opts := fastOptions(dir, newS3(t, env, ""))
	opts.DeleteGrace = 50 * time.Millisecond
	var alarm atomic.Pointer[error]
	opts.OnAlarm = func(err error) { alarm.Store(&err) }
	start := time.Now()
	s := open(t, opts)
	waitIdle(t, s, start)
	before := bucketKeys(t, env, "vw/files/attachments/")
	if len(before) == 0 {
		t.Fatal("fixture has no attachments")
	}

	if err := os.RemoveAll(filepath.Join(dir, "attachments")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { return alarm.Load() != nil })
	time.Sleep(4 * opts.DeleteGrace)
	_ = s.Reconcile(t.Context())
	if err := *alarm.Load(); !errors.Is(err, filesync.ErrMassDeletion) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("alarm %v, want ErrMassDeletion naming the missing folder", err)
	}
	if after := bucketKeys(t, env, "vw/files/attachments/"); len(after) != len(before) {
		t.Fatalf("bucket holds %d attachments after the folder vanished, want all %d", len(after), len(before))
	}
	if keys := bucketKeys(t, env, "vw/trash/"); len(keys) != 0 {
		t.Fatalf("trash holds %v", keys)
	}
	if st := s.Status(); !st.Alarm || st.Error == "" {
		t.Fatalf("status %+v, want alarm and error", st)
	}
}

// A listing that fails during restore fails the restore loudly and leaves the
// data folder as it was; so does a failed download.
func TestRestore_S3_Failures(t *testing.T) {
	env := testenv.NewS3(t)
	src := newVault(t, vaultsim.Options{Seed: 12})
	store := newS3(t, env, "")
	start := time.Now()
	s := open(t, fastOptions(src, store))
	waitIdle(t, s, start)

	proxy := newFaultProxy(t, env.Endpoint)
	viaProxy := newS3(t, env, proxy.URL)
	dst := filepath.Join(t.TempDir(), "data")
	writeFile(t, filepath.Join(dst, "db.sqlite3"), []byte("restored database"))
	writeFile(t, filepath.Join(dst, "attachments", "old", "file"), []byte("already here"))
	before := treeOf(t, dst)

	for name, fail := range map[string]func(*http.Request) bool{
		"list": isList,
		"get": func(r *http.Request) bool {
			return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/vw/files/config.json")
		},
	} {
		t.Run(name, func(t *testing.T) {
			proxy.failWhen(fail)
			res, err := filesync.Restore(t.Context(), filesync.RestoreOptions{
				Store: viaProxy, DataDir: dst, Includes: includesOf(dst), Parallelism: 4,
			})
			if err == nil {
				t.Fatalf("restore with failing %s requests succeeded: %+v", name, res)
			}
			t.Logf("restore error: %v", err)
			after := treeOf(t, dst)
			if len(after) != len(before) {
				t.Fatalf("data folder changed: %d entries, was %d", len(after), len(before))
			}
			for k, v := range before {
				if after[k] != v {
					t.Fatalf("data folder changed at %s", k)
				}
			}
		})
	}

	proxy.failWhen(func(*http.Request) bool { return false })
	res, err := filesync.Restore(t.Context(), filesync.RestoreOptions{Store: viaProxy, DataDir: dst, Includes: includesOf(dst)})
	if err != nil {
		t.Fatal(err)
	}
	want := syncedFiles(t, src)
	if res.Files != len(want) {
		t.Fatalf("restored %d files, want %d", res.Files, len(want))
	}
	got := syncedFiles(t, dst)
	delete(got, "files/attachments/old/file")
	if len(got) != len(want) {
		t.Fatalf("restored folder has %d synced files, want %d", len(got), len(want))
	}
	for k, w := range want {
		if !bytes.Equal(got[k], w) {
			t.Errorf("%s differs after restore", k)
		}
	}
}
