package dbrepl

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
)

// syncBuffer is a log sink for a replicator's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// runOnce starts a replicator on path, waits until it has uploaded what it
// captured, stops it and returns its log.
func runOnce(t *testing.T, path string, store *memStore) string {
	t.Helper()
	var log syncBuffer
	r, err := New(Options{DBPath: path, Store: store, SyncInterval: 100 * time.Millisecond, ShutdownTimeout: 10 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, r, 1)
	if err := r.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}
	return log.String()
}

// checkpoint runs SQLite's checkpoint as the automatic one does (PASSIVE).
func checkpoint(t *testing.T, db *sql.DB) {
	t.Helper()
	var busy, logN, done int
	if err := db.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logN, &done); err != nil {
		t.Fatal(err)
	}
	if busy != 0 || logN != done {
		t.Fatalf("checkpoint incomplete: busy %d, %d of %d frames", busy, done, logN)
	}
}

// TestReplicator_WALRestartWhileStopped: rows committed while replication is
// stopped, then checkpointed, then a short write that restarts the WAL (the
// sidecar case: the application outlives the replicator). Litestream alone
// resumes from the head of the new WAL and never uploads those rows; the
// start-up continuity check notices and writes a full copy, so the restore
// has every row. A plain restart (no checkpoint) needs no full copy.
func TestReplicator_WALRestartWhileStopped(t *testing.T) {
	store := newMemStore()
	path := tempDB(t)
	db := openTestDB(t, path)

	insertBatch(t, db, 0, 100)
	runOnce(t, path, store)

	// Plain restart: the WAL is where replication left it.
	insertBatch(t, db, 100, 150)
	if log := runOnce(t, path, store); strings.Contains(log, "continuity") {
		t.Fatalf("a restart without a WAL restart wrote a full copy:\n%s", log)
	}

	// Committed while stopped, copied into the database, WAL restarted by the
	// next (short) write, which leaves the old frame at the last position in place.
	insertBatch(t, db, 150, 300)
	checkpoint(t, db)
	insertBatch(t, db, 300, 301)
	log := runOnce(t, path, store)
	if !strings.Contains(log, "continuity") {
		t.Errorf("the restart after a WAL restart did not report the repair:\n%s", log)
	}

	out := filepath.Join(t.TempDir(), "restored", "db.sqlite3")
	if _, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	got := itemIDs(t, out)
	if want := seq(0, 301); !slices.Equal(got, want) {
		var missing []int
		for _, id := range want {
			if !slices.Contains(got, id) {
				missing = append(missing, id)
			}
		}
		t.Fatalf("restored %d rows of %d; missing %d, first %d", len(got), len(want), len(missing), missing[0])
	}

	// The next start trusts the repaired position: no second full copy.
	insertBatch(t, db, 301, 310)
	if log := runOnce(t, path, store); strings.Contains(log, "continuity") {
		t.Fatalf("the start after a repair wrote another full copy:\n%s", log)
	}
}

// TestReplicator_UnprovenFilesOfAKilledRun: a run that captured the WAL after
// a restart and died before proving it (and before uploading) leaves an
// unproven file behind; the next start proves from the marker's position,
// not from that file, and makes the replica whole.
func TestReplicator_UnprovenFilesOfAKilledRun(t *testing.T) {
	store := newMemStore()
	path := tempDB(t)
	db := openTestDB(t, path)
	insertBatch(t, db, 0, 100)
	runOnce(t, path, store)

	insertBatch(t, db, 100, 300)
	checkpoint(t, db)
	insertBatch(t, db, 300, 301)
	// The engine alone, as a run killed right after its first capture: the
	// upload fails, so the file it wrote stays local and unproven.
	down := &failingStore{memStore: store}
	down.failPuts.Store(true)
	engine := litestream.NewDB(path)
	engine.MonitorInterval = 0
	engine.ShutdownSyncTimeout = 0
	replica := litestream.NewReplicaWithClient(engine, newReplicaClient(down, slog.New(slog.DiscardHandler)))
	replica.MonitorEnabled = false
	engine.Replica = replica
	if err := engine.Open(); err != nil {
		t.Fatal(err)
	}
	if err := engine.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = engine.Close(context.Background()) // the upload fails
	local, err := localStateTXID(path)
	if err != nil {
		t.Fatal(err)
	}
	if proven, _, _ := readContinuityMarker(path); proven >= local {
		t.Fatalf("the engine wrote nothing unproven (marker %d, local %d)", proven, local)
	}

	if log := runOnce(t, path, store); !strings.Contains(log, "continuity") {
		t.Errorf("the start after the killed run did not repair:\n%s", log)
	}
	out := filepath.Join(t.TempDir(), "restored", "db.sqlite3")
	if _, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := itemIDs(t, out); !slices.Equal(got, seq(0, 301)) {
		t.Fatalf("restored %d rows of 301", len(got))
	}
}

// The checkpoint that follows an upload writes level-0 files of its own. A
// kill right after it, before any further capture, must not leave them
// unproven: the next start resumes without a full copy of the database, and
// the replica restores every row.
func TestReplicator_KillAfterCheckpointNeedsNoFullCopy(t *testing.T) {
	mem := newMemStore()
	store := &failingStore{memStore: mem}
	path := tempDB(t)
	db := openTestDB(t, path)
	insertBatch(t, db, 0, 100)
	r, err := New(Options{DBPath: path, Store: store, SyncInterval: 100 * time.Millisecond, ShutdownTimeout: time.Second,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitSynced(t, r, 1)
	r.cancel() // the sync loop stops; the test drives the steps itself
	<-r.done
	ctx := context.Background()
	insertBatch(t, db, 100, 120)
	if _, err := r.captureAndUpload(ctx); err != nil {
		t.Fatal(err)
	}
	r.syncMu.Lock()
	r.lastCheckpoint = time.Now().Add(-2 * checkpointInterval)
	r.syncMu.Unlock()
	before, err := localStateTXID(path)
	if err != nil {
		t.Fatal(err)
	}
	if !r.checkpointIfDue(ctx) {
		t.Fatal("the checkpoint did not run")
	}
	after, err := localStateTXID(path)
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Fatalf("the checkpoint wrote no level-0 file (local transaction %d -> %d): the test proves nothing", before, after)
	}
	// kill -9 now: nothing more is uploaded, the engine is not shut down cleanly.
	store.failPuts.Store(true)
	r.db.ShutdownSyncTimeout = 0
	_ = r.lsStore.Close(ctx)

	insertBatch(t, db, 120, 121)
	if log := runOnce(t, path, mem); strings.Contains(log, "continuity not proven") {
		t.Errorf("the start after the kill wrote a full copy:\n%s", log)
	}
	out := filepath.Join(t.TempDir(), "restored", "db.sqlite3")
	if _, err := Restore(ctx, RestoreOptions{Store: mem, OutputPath: out}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := itemIDs(t, out); !slices.Equal(got, seq(0, 121)) {
		t.Fatalf("restored %d rows of 121", len(got))
	}
}
