package dbrepl

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/objstore/storetest"
)

func TestReplicator_ReplicateAndRestore(t *testing.T) {
	store := newMemStore()
	path := tempDB(t)
	db := openTestDB(t, path)
	r := startReplicator(t, path, store)

	for i := range 10 {
		insertBatch(t, db, i*50, (i+1)*50)
	}
	st := waitSynced(t, r, 1)
	if err := r.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}

	// Keys mirror litestream's S3 client: db/<level %04x>/<min>-<max>.ltx.
	keys := store.keys("db/")
	if len(keys) == 0 || !strings.HasPrefix(keys[0], "db/0000/0000000000000001-") {
		t.Fatalf("unexpected key layout: %v", keys)
	}

	out := filepath.Join(t.TempDir(), "restored", "db.sqlite3")
	res, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got, want := itemIDs(t, out), seq(0, 500); !slices.Equal(got, want) {
		t.Fatalf("restored %d rows, want %d", len(got), len(want))
	}
	if res.TXID < st.ReplicatedTXID {
		t.Fatalf("restored txid %d, want >= %d", res.TXID, st.ReplicatedTXID)
	}
	if res.Timestamp.IsZero() || time.Since(res.Timestamp) > time.Minute {
		t.Fatalf("implausible transaction time %v", res.Timestamp)
	}
}

func TestReplicator_CloseFlushesLastWrite(t *testing.T) {
	store := newMemStore()
	path := tempDB(t)
	db := openTestDB(t, path)
	r := startReplicator(t, path, store)
	insertBatch(t, db, 0, 10)
	waitSynced(t, r, 1)

	// Written and closed at once, well inside one sync interval.
	insertBatch(t, db, 10, 11)
	if err := r.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}
	out := filepath.Join(t.TempDir(), "db.sqlite3")
	if _, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out}); err != nil {
		t.Fatal(err)
	}
	if got := itemIDs(t, out); !slices.Contains(got, 10) {
		t.Fatalf("row written just before Close is missing: %v", got)
	}
}

func TestReplicator_CloseReportsUnsyncedData(t *testing.T) {
	store := &failingStore{memStore: newMemStore()}
	path := tempDB(t)
	db := openTestDB(t, path)
	r, err := New(Options{DBPath: path, Store: store, SyncInterval: 100 * time.Millisecond, ShutdownTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	insertBatch(t, db, 0, 10)
	waitSynced(t, r, 1)

	store.failPuts.Store(true)
	insertBatch(t, db, 10, 20)
	err = r.Close(context.Background())
	var unsynced *UnsyncedError
	if !errors.As(err, &unsynced) {
		t.Fatalf("close with a failing store: got %v, want UnsyncedError", err)
	}
	if unsynced.LocalTXID <= unsynced.ReplicatedTXID {
		t.Fatalf("unsynced range is empty: %+v", unsynced)
	}
	if st := r.Status(); st.LastError == "" || st.Running {
		t.Fatalf("status after failed close: %+v", st)
	}
}

func TestReplicator_IdleMakesNoRequests(t *testing.T) {
	mem := newMemStore()
	store := storetest.NewCounting(mem)
	path := tempDB(t)
	db := openTestDB(t, path)
	r := startReplicator(t, path, store)
	insertBatch(t, db, 0, 10)
	waitSynced(t, r, 1)
	// The first level-1 compaction of what was written is work, not idling:
	// litestream runs it on the next 30 s boundary of the clock, so wait for
	// its file (up to 35 s), then for a quiet second.
	deadline := time.Now().Add(35 * time.Second)
	for !hasLevel1(t, mem) {
		if time.Now().After(deadline) {
			t.Fatal("no level-1 compaction within 35 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Levels 2 and 3 compact on the clock's 5-minute and hour boundaries: keep
	// the quiet second and the measured window clear of the next one.
	if next := time.Now().Truncate(5 * time.Minute).Add(5 * time.Minute); time.Until(next) < 8*time.Second {
		time.Sleep(time.Until(next) + 2*time.Second)
	}
	for quiet := store.Total(); ; {
		time.Sleep(time.Second)
		n := store.Total()
		if n == quiet {
			break
		}
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("replicator still busy after its first compaction: %v", store.Counts())
		}
		quiet = n
	}

	before := store.Total()
	time.Sleep(3 * time.Second)
	if n := store.Total() - before; n != 0 {
		t.Fatalf("idle replicator made %d requests in 3s: %v", n, store.Counts())
	}
}

// hasLevel1 reports whether the store holds a level-1 LTX file.
func hasLevel1(t *testing.T, store objstore.Store) bool {
	t.Helper()
	for _, err := range store.List(context.Background(), layout.DB+"0001/") {
		if err != nil {
			t.Fatal(err)
		}
		return true
	}
	return false
}

func TestReplicator_StatusReportsProgress(t *testing.T) {
	store := newMemStore()
	path := tempDB(t)
	db := openTestDB(t, path)
	r := startReplicator(t, path, store)
	insertBatch(t, db, 0, 10)
	st := waitSynced(t, r, 1)
	if !st.Running || st.LastSyncAt.IsZero() || st.LastUploadAt.IsZero() || st.Lag != 0 || st.LastError != "" {
		t.Fatalf("status after sync: %+v", st)
	}
	insertBatch(t, db, 10, 20)
	st2 := waitSynced(t, r, st.LocalTXID+1)
	if st2.ReplicatedTXID <= st.ReplicatedTXID {
		t.Fatalf("replicated txid did not advance: %d -> %d", st.ReplicatedTXID, st2.ReplicatedTXID)
	}
}

// TestReplicator_CloseRightAfterStart: a stop that comes before the first sync
// tick finished still uploads the whole database (a container stopped seconds
// after it started must not lose the vault).
func TestReplicator_CloseRightAfterStart(t *testing.T) {
	store := newMemStore()
	path := tempDB(t)
	db := openTestDB(t, path)
	insertBatch(t, db, 0, 25)
	r := startReplicator(t, path, store)
	insertBatch(t, db, 25, 30)
	if err := r.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}
	out := filepath.Join(t.TempDir(), "db.sqlite3")
	if _, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got, want := itemIDs(t, out), seq(0, 30); !slices.Equal(got, want) {
		t.Fatalf("restored rows %v, want %v", got, want)
	}
}

// TestReplicator_UploadsOnWALChange proves that a commit is uploaded when the
// WAL changes, not on the tick: the tick here is an hour, so only the WAL
// watch can make the commit durable before the test gives up.
func TestReplicator_UploadsOnWALChange(t *testing.T) {
	store := newMemStore()
	path := tempDB(t)
	db := openTestDB(t, path)
	insertBatch(t, db, 0, 10)
	first := startReplicator(t, path, store)
	waitSynced(t, first, 1)
	if err := first.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A second run finds the replica caught up, so its start uploads nothing
	// and the first commit may be uploaded at once.
	r, err := New(Options{DBPath: path, Store: store, SyncInterval: time.Hour, ShutdownTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	before := r.Status()
	insertBatch(t, db, 10, 11)
	st := waitSynced(t, r, before.LocalTXID+1)
	if st.ReplicatedTXID <= before.ReplicatedTXID {
		t.Fatalf("commit not uploaded: before %+v, after %+v", before, st)
	}
}
