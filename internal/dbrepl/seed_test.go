package dbrepl

import (
	"context"
	"database/sql"
	"log/slog"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"

	"github.com/vwstream/vwstream/internal/vault"
)

// seedRows rows are replicated in these tests, with seedNoise of random
// bytes beside them, which no compression shrinks: a full copy (1 MB) is
// told from a one-row write (a few pages) by size alone.
const (
	seedRows  = 4000
	seedNoise = 1 << 20
)

// addNoise stores n random bytes in a table of their own, in one transaction.
func addNoise(t *testing.T, db *sql.DB, n int) {
	t.Helper()
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS noise (b BLOB)`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for ; n > 0; n -= 1000 {
		if _, err := tx.Exec(`INSERT INTO noise (b) VALUES (randomblob(1000))`); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// Replica shapes the seed is gathered from (seedSource).
const (
	shapeLevel0    = "newest level-0 file in the plan" // the plan ends with the level-0 file of T
	shapeCompacted = "newest file compacted"           // the plan ends with a level-1 file of several transactions
	shapeSnapshot  = "only transaction in a snapshot"  // the plan is the snapshot of T = 1 alone
)

// replicateRows replicates seedNoise and seedRows rows into store and returns
// the database's path. shapeLevel0 and shapeCompacted commit the rows in
// batches of 500 while replicating, shapeCompacted with level-1 compaction
// every 50 ms until level 1 holds the newest transaction; shapeSnapshot
// commits everything first, and replicates until the snapshot of the one
// transaction the engine then captures is stored.
func replicateRows(t *testing.T, store *memStore, shape string) string {
	t.Helper()
	path := tempDB(t)
	db := openTestDB(t, path)
	var opts []func(*Options)
	if shape == shapeCompacted {
		opts = append(opts, func(o *Options) { o.CompactionLevels = []time.Duration{50 * time.Millisecond} })
	}
	if shape == shapeSnapshot {
		addNoise(t, db, seedNoise)
		insertBatch(t, db, 0, seedRows)
	}
	r := startReplicatorWith(t, path, store, opts...)
	if shape != shapeSnapshot {
		addNoise(t, db, seedNoise)
		for i := 0; i < seedRows; i += 500 {
			insertBatch(t, db, i, i+500)
			if err := r.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	for deadline := time.Now().Add(20 * time.Second); shape != shapeLevel0; time.Sleep(20 * time.Millisecond) {
		head, err := readReplicaHead(context.Background(), store)
		if err != nil {
			t.Fatal(err)
		}
		if shape == shapeCompacted && maxTXIDAt(store, 1) == head.txid && head.txid > 1 {
			break
		}
		if shape == shapeSnapshot && maxTXIDAt(store, litestream.SnapshotLevel) == 1 && head.txid == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the replica did not take that shape (newest transaction %d)", shape, head.txid)
		}
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return path
}

func startReplicatorWith(t *testing.T, path string, store *memStore, opts ...func(*Options)) *Replicator {
	t.Helper()
	opt := Options{DBPath: path, Store: store, SyncInterval: 100 * time.Millisecond, ShutdownTimeout: 10 * time.Second}
	for _, o := range opts {
		o(&opt)
	}
	r, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

// l0Files returns the replica's level-0 files after txid, by TXID, with sizes.
func l0Files(store *memStore, after ltx.TXID) map[ltx.TXID]int64 {
	out := map[ltx.TXID]int64{}
	for _, key := range store.keys(levelPrefix(0)) {
		minTXID, maxTXID, err := ltx.ParseFilename(path.Base(key))
		if err != nil || maxTXID <= after {
			continue
		}
		if minTXID != maxTXID {
			out[maxTXID] = -1
			continue
		}
		out[maxTXID] = store.info(key).Size
	}
	return out
}

// restoreLatest restores the replica's newest state into a fresh folder.
func restoreLatest(t *testing.T, store *memStore) (string, Result) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "restored", "db.sqlite3")
	res, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	return out, res
}

// checkRestored restores the replica again and checks its rows and integrity.
func checkRestored(t *testing.T, store *memStore, want []int) {
	t.Helper()
	out, _ := restoreLatest(t, store)
	if err := vault.CheckIntegrity(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	if got := itemIDs(t, out); !slices.Equal(got, want) {
		t.Fatalf("restored %d rows, want %d", len(got), len(want))
	}
}

// TestRestore_LatestContinuesWithoutFullCopy: a restore of the replica's
// newest transaction leaves the engine's state for it, so replication of the
// restored database uploads the next write as a file of a few pages at the
// next transaction, not the whole database again; the replica then restores
// to every row. Every way of gathering the seed is covered: the plan's
// level-0 file of T, a level-0 file fetched beside a plan ending with a
// compacted file, and the snapshot of T = 1 with the level-0 header fetched.
func TestRestore_LatestContinuesWithoutFullCopy(t *testing.T) {
	for _, shape := range []string{shapeLevel0, shapeCompacted, shapeSnapshot} {
		t.Run(shape, func(t *testing.T) {
			store := newMemStore()
			replicateRows(t, store, shape)
			head, err := readReplicaHead(context.Background(), store)
			if err != nil {
				t.Fatal(err)
			}
			out, res := restoreLatest(t, store)
			if res.TXID != uint64(head.txid) {
				t.Fatalf("restored transaction %d, want the newest, %d", res.TXID, head.txid)
			}
			var log syncBuffer
			db := openTestDB(t, out)
			// Level-1 compaction runs, and reads the engine's local files
			// first: the seeded file of T takes part when level 1 is behind T.
			r := startReplicatorWith(t, out, store, func(o *Options) {
				o.Logger = slog.New(slog.NewTextHandler(&log, nil))
				o.CompactionLevels = []time.Duration{50 * time.Millisecond}
			})
			insertBatch(t, db, seedRows, seedRows+1)
			waitSynced(t, r, uint64(head.txid)+1)
			for deadline := time.Now().Add(20 * time.Second); maxTXIDAt(store, 1) <= head.txid; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("level 1 did not reach transaction %d", head.txid+1)
				}
			}
			if err := r.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			files := l0Files(store, head.txid)
			size, ok := files[head.txid+1]
			if !ok || size < 0 || size > 32<<10 {
				t.Fatalf("the write after the restore was uploaded as %v (bytes by transaction); want one file of a few pages at %d", files, head.txid+1)
			}
			if strings.Contains(log.String(), "continuity") {
				t.Fatalf("the start after the restore repaired continuity:\n%s", log.String())
			}
			// The replica restores from level 1 (no snapshot to start from),
			// then from level 0 alone.
			for _, level := range []int{litestream.SnapshotLevel, 1} {
				for _, key := range store.keys(levelPrefix(level)) {
					if err := store.Delete(context.Background(), key); err != nil {
						t.Fatal(err)
					}
				}
				checkRestored(t, store, seq(0, seedRows+1))
			}
			if !res.Seeded {
				t.Fatal("the restore says it left no replication state")
			}
		})
	}
}

// maxTXIDAt is the newest transaction stored at one level.
func maxTXIDAt(store *memStore, level int) ltx.TXID {
	var txid ltx.TXID
	for _, key := range store.keys(levelPrefix(level)) {
		if _, maxTXID, err := ltx.ParseFilename(path.Base(key)); err == nil {
			txid = max(txid, maxTXID)
		}
	}
	return txid
}

// TestRestore_OlderTransactionWritesFullCopy: a restore of a transaction
// older than the replica's newest leaves no seed; replicating the restored
// database writes the whole database at the replica's newest transaction + 1
// (the replica's history after the restored one is not the local database's),
// and the replica then restores to the restored rows plus the new ones, none
// of the transactions that were put aside.
func TestRestore_OlderTransactionWritesFullCopy(t *testing.T) {
	store := newMemStore()
	replicateRows(t, store, shapeLevel0)
	head, err := readReplicaHead(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	older := head.txid - 2
	out := filepath.Join(t.TempDir(), "restored", "db.sqlite3")
	res, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out, TXID: uint64(older)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Seeded || res.TXID != uint64(older) {
		t.Fatalf("restore of transaction %d of %d: %+v", older, head.txid, res)
	}
	want := itemIDs(t, out)
	if len(want) >= seedRows || len(want) == 0 {
		t.Fatalf("transaction %d holds %d rows; the test needs some, not all", older, len(want))
	}
	if got := mustState(t, out, store); got.State != StateResume {
		t.Fatalf("restored database: %+v", got)
	}

	db := openTestDB(t, out)
	r := startReplicatorWith(t, out, store)
	insertBatch(t, db, 100000, 100001)
	waitSynced(t, r, uint64(head.txid)+1)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	files := l0Files(store, head.txid)
	if size := files[head.txid+1]; size < seedNoise {
		t.Fatalf("transaction %d (the first after the replica's newest) has %d bytes, want a full copy (> %d); files %v",
			head.txid+1, size, seedNoise, files)
	}
	checkRestored(t, store, append(want, 100000))
}

// TestRestore_SeedGivesWayToAChangedWAL: the seed trusts one WAL. When it is
// gone or restarted before replication starts (the database opened and closed
// by a tool that does not keep the WAL, or checkpointed and written to), the
// engine notices and writes a full copy; every row committed meanwhile is in
// the replica. Rows written to the WAL as it was left (the application
// started before replication, no checkpoint) go up as a small file.
func TestRestore_SeedGivesWayToAChangedWAL(t *testing.T) {
	for _, tc := range []struct {
		name   string
		full   bool
		meddle func(t *testing.T, path string)
	}{
		{"written to, WAL kept", false, func(t *testing.T, path string) {
			insertBatch(t, openTestDB(t, path), 200000, 200010)
		}},
		{"opened and closed", true, func(t *testing.T, path string) {
			db := openTestDB(t, path)
			insertBatch(t, db, 200000, 200010)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{"checkpointed and restarted", true, func(t *testing.T, path string) {
			db := openTestDB(t, path)
			db.SetMaxOpenConns(1)
			insertBatch(t, db, 200000, 200005)
			checkpoint(t, db)
			insertBatch(t, db, 200005, 200010)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			replicateRows(t, store, shapeLevel0)
			head, err := readReplicaHead(context.Background(), store)
			if err != nil {
				t.Fatal(err)
			}
			out, res := restoreLatest(t, store)
			if !res.Seeded {
				t.Fatal("restore of the newest transaction left no replication state")
			}
			tc.meddle(t, out)

			r := startReplicatorWith(t, out, store)
			waitSynced(t, r, uint64(head.txid)+1)
			if err := r.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			files := l0Files(store, head.txid)
			size := files[head.txid+1]
			if tc.full && size < seedNoise {
				t.Fatalf("transaction %d has %d bytes, want a full copy; files %v", head.txid+1, size, files)
			}
			if !tc.full && (size <= 0 || size > 32<<10) {
				t.Fatalf("transaction %d has %d bytes, want the rows written, a few pages; files %v", head.txid+1, size, files)
			}
			checkRestored(t, store, append(seq(0, seedRows), seq(200000, 200010)...))
		})
	}
}
