package dbrepl

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func mustState(t *testing.T, path string, store *memStore) StateInfo {
	t.Helper()
	info, err := State(context.Background(), path, store)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestState_FreshRestoreResume(t *testing.T) {
	store := newMemStore()
	path := tempDB(t)
	if got := mustState(t, path, store); got.State != StateFresh {
		t.Fatalf("no db, empty replica: %v", got.State)
	}

	db := openTestDB(t, path)
	insertBatch(t, db, 0, 10)
	if got := mustState(t, path, store); got.State != StateResume {
		t.Fatalf("db, empty replica: %v", got.State)
	}

	r := startReplicator(t, path, store)
	waitSynced(t, r, 1)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := mustState(t, path, store); got.State != StateResume || got.LocalTXID != got.ReplicaTXID {
		t.Fatalf("db in sync with replica: %+v", got)
	}

	other := filepath.Join(t.TempDir(), "db.sqlite3")
	if got := mustState(t, other, store); got.State != StateRestore || got.ReplicaTXID == 0 {
		t.Fatalf("no db, replica with data: %+v", got)
	}
}

// copyDir copies a database folder, as a volume snapshot would.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
}

func TestState_StaleVolumeIsRefused(t *testing.T) {
	store := newMemStore()
	dir := t.TempDir()
	path := filepath.Join(dir, "data", "db.sqlite3")
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	db := openTestDB(t, path)
	r := startReplicator(t, path, store)
	insertBatch(t, db, 0, 10)
	st := waitSynced(t, r, 1)

	// An old copy of the volume, taken while replication was running.
	old := filepath.Join(dir, "old")
	copyDir(t, filepath.Dir(path), old)

	insertBatch(t, db, 10, 20)
	waitSynced(t, r, st.LocalTXID+1)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	got := mustState(t, filepath.Join(old, "db.sqlite3"), store)
	if got.State != StateStale || got.LocalTXID >= got.ReplicaTXID {
		t.Fatalf("old volume: %+v", got)
	}
	if !strings.Contains(got.Message, "move it away") || strings.Contains(got.Message, "\n") {
		t.Fatalf("stale message does not say how to resolve: %q", got.Message)
	}

	// A database that never ran under litestream is refused too.
	foreign := filepath.Join(t.TempDir(), "db.sqlite3")
	insertBatch(t, openTestDB(t, foreign), 0, 1)
	if got := mustState(t, foreign, store); got.State != StateStale {
		t.Fatalf("database without replication state: %+v", got)
	}
}

func TestState_RestoredDatabaseResumesReplication(t *testing.T) {
	store, marks := replicateBatches(t, 3)

	// A point-in-time restore is behind the replica but was taken from it.
	out := filepath.Join(t.TempDir(), "db.sqlite3")
	if _, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out, Timestamp: marks[0]}); err != nil {
		t.Fatal(err)
	}
	if got := mustState(t, out, store); got.State != StateResume || !got.Restored {
		t.Fatalf("restored database: %+v", got)
	}

	// Replicating it continues the replica from the restored state.
	db := openTestDB(t, out)
	r := startReplicator(t, out, store)
	insertBatch(t, db, 1000, 1010)
	waitSynced(t, r, 1)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(t.TempDir(), "db.sqlite3")
	if _, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: again}); err != nil {
		t.Fatal(err)
	}
	if got, want := itemIDs(t, again), append(seq(0, 100), seq(1000, 1010)...); !slices.Equal(got, want) {
		t.Fatalf("restore after resumed replication: got %v rows, want %v", len(got), len(want))
	}
}
