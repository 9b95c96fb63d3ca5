package filesync_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/filesync"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/objstore/storetest"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// The first reconcile stores every synced file and nothing else (no database,
// no tmp/, no dot files, no icon cache when not included).
func TestSyncer_FirstSync(t *testing.T) {
	dir := newVault(t, vaultsim.Options{Seed: 1})
	writeFile(t, filepath.Join(dir, "tmp", "upload-in-progress"), []byte("partial"))
	writeFile(t, filepath.Join(dir, "attachments", ".hidden"), []byte("editor temp"))
	writeFile(t, filepath.Join(dir, "db.sqlite3-wal"), []byte("wal"))
	store := newLocal(t)
	start := time.Now()
	s := open(t, fastOptions(dir, store))
	st := waitIdle(t, s, start)

	want := syncedFiles(t, dir)
	delete(want, "files/attachments/.hidden")
	sameContents(t, storeContents(t, store, "files/"), want)
	if got, want := st.FilesUploaded, int64(len(want)); got != want {
		t.Fatalf("FilesUploaded = %d, want %d", got, want)
	}
	if st.Error != "" || st.Alarm {
		t.Fatalf("status after a clean sync: %+v", st)
	}
}

// A reconcile with nothing changed costs one listing and no other request; an
// mtime-only change uploads nothing; a content change uploads one object.
func TestSyncer_Reconcile_Requests(t *testing.T) {
	dir := newVault(t, vaultsim.Options{Seed: 2})
	store := storetest.NewCounting(newLocal(t))
	start := time.Now()
	s := open(t, fastOptions(dir, store))
	waitIdle(t, s, start)
	store.Take()

	if err := s.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := store.Take(); len(got) != 1 || got["list"] != 1 {
		t.Fatalf("no-change reconcile made requests %v, want one list", got)
	}

	cfg := filepath.Join(dir, "config.json")
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(cfg, old, old); err != nil {
		t.Fatal(err)
	}
	before := s.Status().FilesUploaded
	if err := s.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { return s.Status().Pending == 0 })
	if got := store.Take(); got["put"] != 0 {
		t.Fatalf("mtime-only change made requests %v, want no put", got)
	}
	if err := s.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := store.Take(); len(got) != 1 || got["list"] != 1 {
		t.Fatalf("reconcile after an mtime-only change made requests %v, want one list (the manifest learnt the mtime)", got)
	}

	writeFile(t, cfg, []byte(`{"domain":"https://changed.example"}`))
	waitFor(t, 5*time.Second, func() bool { return s.Status().FilesUploaded == before+1 && s.Status().Pending == 0 })
	if got := store.Take(); got["put"] != 1 {
		t.Fatalf("one changed file made requests %v, want one put", got)
	}
}

// A deleted file is moved to trash/ after the grace period, not before.
func TestSyncer_Delete_Trash(t *testing.T) {
	dir := newVault(t, vaultsim.Options{Seed: 3})
	store := newLocal(t)
	opts := fastOptions(dir, store)
	opts.DeleteGrace = 400 * time.Millisecond
	start := time.Now()
	s := open(t, opts)
	waitIdle(t, s, start)

	var victim string
	for k := range syncedFiles(t, dir) {
		if strings.HasPrefix(k, "files/attachments/") {
			victim = k
			break
		}
	}
	abs := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(victim, "files/")))
	if err := os.Remove(abs); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	waitFor(t, 10*time.Second, func() bool {
		_, err := store.Stat(t.Context(), victim)
		return errors.Is(err, objstore.ErrNotFound)
	})
	if took := time.Since(removed); took < opts.DeleteGrace {
		t.Fatalf("deleted after %v, before the %v grace period", took, opts.DeleteGrace)
	}
	trash := storeContents(t, store, "trash/")
	if len(trash) != 1 {
		t.Fatalf("trash holds %d objects, want 1", len(trash))
	}
	for k := range trash {
		if !strings.HasPrefix(k, "trash/"+victim+"@") {
			t.Fatalf("trash key %s, want trash/%s@<time>", k, victim)
		}
	}
	// The status counts the move once the delete that ends it has returned.
	waitFor(t, 5*time.Second, func() bool { return s.Status().FilesTrashed == 1 })
	if st := s.Status(); st.FilesTrashed != 1 || st.Alarm {
		t.Fatalf("status %+v, want one trashed file and no alarm", st)
	}
}

// Losing most of a folder at once is refused: the remote copy stays, status
// is error and OnAlarm is called; additions elsewhere keep syncing.
func TestSyncer_MassDeletionGuard_Ratio(t *testing.T) {
	dir := newVault(t, vaultsim.Options{Seed: 4, Attachments: 20})
	store := newLocal(t)
	opts := fastOptions(dir, store)
	opts.DeleteGrace = 50 * time.Millisecond
	var alarms atomic.Int32
	opts.OnAlarm = func(err error) {
		if errors.Is(err, filesync.ErrMassDeletion) {
			alarms.Add(1)
		}
	}
	start := time.Now()
	s := open(t, opts)
	waitIdle(t, s, start)
	before := storeContents(t, store, "files/attachments/")

	var atts []string
	_ = filepath.Walk(filepath.Join(dir, "attachments"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			atts = append(atts, p)
		}
		return nil
	})
	slices.Sort(atts)
	for _, p := range atts[:15] {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, func() bool { return s.Status().Alarm })
	time.Sleep(3 * opts.DeleteGrace)
	if err := s.Reconcile(t.Context()); err != nil {
		t.Log(err)
	}
	if got := storeContents(t, store, "files/attachments/"); len(got) != len(before) {
		t.Fatalf("store holds %d attachments after a mass deletion, want all %d kept", len(got), len(before))
	}
	st := s.Status()
	if st.Error == "" || !strings.Contains(st.AlarmReason, "15 of its 20") {
		t.Fatalf("status %+v: want an error naming 15 of 20 files", st)
	}
	if alarms.Load() != 1 {
		t.Fatalf("OnAlarm called %d times, want once", alarms.Load())
	}

	// Additions still sync while deletions are refused.
	newFile := filepath.Join(dir, "sends", "new-send", "file")
	writeFile(t, newFile, []byte("a send made during the alarm"))
	waitFor(t, 10*time.Second, func() bool {
		_, err := store.Stat(t.Context(), "files/sends/new-send/file")
		return err == nil
	})
}

// Close uploads what is pending at once, even a file modified an instant ago.
func TestSyncer_Close_Flush(t *testing.T) {
	dir := newVault(t, vaultsim.Options{Seed: 5})
	store := newLocal(t)
	opts := fastOptions(dir, store)
	opts.StableFor = time.Hour
	start := time.Now()
	s, err := filesync.Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { return s.Status().LastReconcile.After(start) })
	writeFile(t, filepath.Join(dir, "attachments", "c1", "a1"), []byte("written just before shutdown"))
	time.Sleep(50 * time.Millisecond) // the event arrives
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	sameContents(t, storeContents(t, store, "files/"), syncedFiles(t, dir))
}

// A stop right after the start, before any reconcile has run, still stores
// every file the folder held: the flush scans it first.
func TestSyncer_Close_RightAfterOpen(t *testing.T) {
	dir := newVault(t, vaultsim.Options{Seed: 6})
	store := newLocal(t)
	opts := fastOptions(dir, store)
	opts.Debounce, opts.StableFor = time.Hour, time.Hour // the loop never gets to them
	s, err := filesync.Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := syncedFiles(t, dir)
	if len(want) == 0 {
		t.Fatal("the vault has no files to sync")
	}
	sameContents(t, storeContents(t, store, "files/"), want)
}

// A flush that cannot finish within ShutdownTimeout names what is not stored.
func TestSyncer_Close_Timeout(t *testing.T) {
	dir := newVault(t, vaultsim.Options{Seed: 6})
	opts := fastOptions(dir, &stuckStore{Store: newLocal(t)})
	opts.ShutdownTimeout = 300 * time.Millisecond
	s, err := filesync.Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	begin := time.Now()
	err = s.Close(t.Context())
	if took := time.Since(begin); took > 3*time.Second {
		t.Fatalf("Close took %v with a %v timeout", took, opts.ShutdownTimeout)
	}
	if err == nil || !strings.Contains(err.Error(), "not in the store") || !strings.Contains(err.Error(), "files/config.json") {
		t.Fatalf("Close error = %v, want the unsynced files named", err)
	}
}

// stuckStore never finishes a Put before its context ends.
type stuckStore struct{ objstore.Store }

func (s *stuckStore) Put(ctx context.Context, key string, r io.Reader, o objstore.PutOptions) (objstore.ObjectInfo, error) {
	<-ctx.Done()
	return objstore.ObjectInfo{}, ctx.Err()
}

// TestSyncer_SymlinkedFolder: an attachments folder that is a symbolic link to
// another disk is synced through the link (inotify and WalkDir do not descend
// into a link given as the root).
func TestSyncer_SymlinkedFolder(t *testing.T) {
	work := t.TempDir()
	real := filepath.Join(work, "elsewhere")
	if err := os.MkdirAll(filepath.Join(real, "c1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(real, "c1", "a1"), []byte("attachment through a link"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(work, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(data, "attachments")); err != nil {
		t.Fatal(err)
	}
	store, err := objstore.NewLocal(filepath.Join(work, "store"))
	if err != nil {
		t.Fatal(err)
	}
	fl := filesync.Layout{DataDir: data, Attachments: true}
	s, err := filesync.Open(t.Context(), filesync.Options{Store: store, DataDir: data, Includes: fl.Includes(), StableFor: time.Millisecond, Debounce: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Stat(t.Context(), "files/attachments/c1/a1"); err != nil {
		t.Fatalf("file behind the symlinked folder not synced: %v", err)
	}
}
