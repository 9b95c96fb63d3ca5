package dbrepl

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"

	"github.com/vwstream/vwstream/internal/objstore"
)

// replicateBatches replicates the given batches of 100 rows and returns the
// store and, for each batch, an instant after it was durable and before the next.
func replicateBatches(t *testing.T, batches int) (*memStore, []time.Time) {
	t.Helper()
	store := newMemStore()
	return store, replicateBatchesTo(t, store, batches)
}

func replicateBatchesTo(t *testing.T, store objstore.Store, batches int) []time.Time {
	t.Helper()
	path := tempDB(t)
	db := openTestDB(t, path)
	r := startReplicator(t, path, store)
	var marks []time.Time
	for i := range batches {
		insertBatch(t, db, i*100, (i+1)*100)
		if err := r.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
		marks = append(marks, time.Now())
		time.Sleep(30 * time.Millisecond)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return marks
}

func TestRestore_PointInTime(t *testing.T) {
	checkPointInTime(t, newMemStore(), 3)
}

// Transaction times come from the LTX headers, not from the store's clock.
func TestRestore_PointInTimeIgnoresStoreClock(t *testing.T) {
	for _, skew := range []time.Duration{-time.Hour, time.Hour} {
		store := newMemStore()
		store.skew = skew
		checkPointInTime(t, store, 3)
	}
}

// checkPointInTime restores the state after each of n batches of 100 rows.
func checkPointInTime(t *testing.T, store objstore.Store, n int) {
	t.Helper()
	marks := replicateBatchesTo(t, store, n)
	// The last instant a replica knows of is its newest transaction.
	_, last, err := Range(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	marks[len(marks)-1] = last
	for i, at := range marks {
		out := filepath.Join(t.TempDir(), "db.sqlite3")
		res, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out, Timestamp: at})
		if err != nil {
			t.Fatalf("restore at batch %d: %v", i, err)
		}
		if got, want := itemIDs(t, out), seq(0, (i+1)*100); !slices.Equal(got, want) {
			t.Fatalf("restore at batch %d: got %d rows, want %d", i, len(got), len(want))
		}
		if res.Timestamp.After(at) {
			t.Fatalf("restore at %v reached a transaction from %v", at, res.Timestamp)
		}
	}
}

func TestRestore_OutOfRangeNamesTheRange(t *testing.T) {
	store, marks := replicateBatches(t, 1)
	first, last, err := Range(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Before(marks[0]) || last.After(marks[0]) || last.Before(first) {
		t.Fatalf("range %v..%v does not bracket the write before %v", first, last, marks[0])
	}
	// After the newest transaction the state is the latest one: --at now works.
	later := last.Add(time.Hour)
	out := filepath.Join(t.TempDir(), "db.sqlite3")
	res, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out, Timestamp: later})
	if err != nil {
		t.Fatalf("restore at %v, after the newest transaction: %v", later, err)
	}
	if got, want := itemIDs(t, out), seq(0, 100); !slices.Equal(got, want) || res.Timestamp.After(later) {
		t.Fatalf("restore after the newest transaction: %d rows at %v, want all %d from before %v", len(got), res.Timestamp, len(want), later)
	}

	for _, at := range []time.Time{first.Add(-time.Hour), first.Add(-time.Millisecond)} {
		out := filepath.Join(t.TempDir(), "db.sqlite3")
		_, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out, Timestamp: at})
		var rerr *RangeError
		if !errors.As(err, &rerr) {
			t.Fatalf("restore at %v: got %v, want RangeError", at, err)
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, first.UTC().Format(time.RFC3339Nano)) || !strings.Contains(msg, last.UTC().Format(time.RFC3339Nano)) {
			t.Fatalf("range error does not name the range on one line: %q", msg)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatalf("failed restore created %s", out)
		}
	}
}

func TestRestore_EmptyReplica(t *testing.T) {
	out := filepath.Join(t.TempDir(), "db.sqlite3")
	if _, err := Restore(context.Background(), RestoreOptions{Store: newMemStore(), OutputPath: out}); !errors.Is(err, ErrNoReplica) {
		t.Fatalf("restore from empty store: got %v, want ErrNoReplica", err)
	}
	if _, _, err := Range(context.Background(), newMemStore()); !errors.Is(err, ErrNoReplica) {
		t.Fatalf("range of empty store: got %v, want ErrNoReplica", err)
	}
}

// oldDatabase writes a different database at path with a -wal and -shm beside it.
func oldDatabase(t *testing.T, path string) []byte {
	t.Helper()
	db := openTestDB(t, path)
	insertBatch(t, db, 9000, 9003)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"-wal", "-shm"} {
		if err := os.WriteFile(path+s, []byte("stale"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRestore_ExistingDatabaseNeedsForce(t *testing.T) {
	store, _ := replicateBatches(t, 1)
	out := filepath.Join(t.TempDir(), "db.sqlite3")
	old := oldDatabase(t, out)

	_, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out})
	if !errors.Is(err, ErrOutputExists) {
		t.Fatalf("restore over existing db: got %v, want ErrOutputExists", err)
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, old) {
		t.Fatal("refused restore changed the existing database")
	}

	if _, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out, Force: true}); err != nil {
		t.Fatalf("forced restore: %v", err)
	}
	if _, err := os.Stat(out + "-shm"); !os.IsNotExist(err) {
		t.Fatal("stale -shm survived the restore")
	}
	// The -wal is the seed's (seed.go): a WAL header, not the stale bytes.
	if b, err := os.ReadFile(out + "-wal"); err != nil || len(b) < 32 || bytes.HasPrefix(b, []byte("stale")) {
		t.Fatalf("the -wal after the restore is not the seed's (%d bytes, %v)", len(b), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 3 { // db, its seeded -wal and the litestream state folder
		t.Fatalf("restore left files behind: %v", entries)
	}
	if got, want := itemIDs(t, out), seq(0, 100); !slices.Equal(got, want) {
		t.Fatalf("forced restore: got %d rows, want %d", len(got), len(want))
	}
}

func TestRestore_DamagedObjectLeavesTargetUntouched(t *testing.T) {
	for name, damage := range map[string]func([]byte) []byte{
		"truncated": func(b []byte) []byte { return b[:len(b)/2] },
		"corrupted": func(b []byte) []byte {
			for i := 120; i < len(b)-20; i += 7 {
				b[i] ^= 0x5a
			}
			return b
		},
		"header": func(b []byte) []byte { return b[:40] },
	} {
		t.Run(name, func(t *testing.T) {
			store, _ := replicateBatches(t, 2)
			// One damaged object is enough to fail the whole restore: the
			// newest of the plan (an L1 file instead of the L0 ones when a
			// compaction ran meanwhile, on the clock's 30 s boundary).
			logger := slog.New(slog.DiscardHandler)
			plan, err := litestream.CalcRestorePlan(context.Background(), newReplicaClient(store, logger), 0, time.Time{}, logger)
			if err != nil {
				t.Fatal(err)
			}
			last := plan[len(plan)-1]
			store.mutate(ltxKey(last.Level, last.MinTXID, last.MaxTXID), damage)
			out := filepath.Join(t.TempDir(), "db.sqlite3")
			old := oldDatabase(t, out)
			_, err = Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out, Force: true})
			if err == nil {
				t.Fatal("restore from damaged objects succeeded")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			if b, _ := os.ReadFile(out); !bytes.Equal(b, old) {
				t.Fatal("failed restore changed the existing database")
			}
			if _, err := os.Stat(out + "-wal"); err != nil {
				t.Fatal("failed restore removed the existing database's WAL")
			}
			if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 3 { // db, -wal, -shm
				t.Fatalf("failed restore left files behind: %v", entries)
			}
			t.Logf("error: %v", err)
		})
	}
}
