package dbrepl

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRestore_TXID restores the state right after each transaction the
// replica holds a boundary for, and refuses one it does not: the rows are
// exactly those of the batches up to it, and an existing database is left
// untouched by a refused restore.
func TestRestore_TXID(t *testing.T) {
	store := newMemStore()
	replicateBatchesTo(t, store, 3)
	ctx := context.Background()
	latest, err := Restore(ctx, RestoreOptions{Store: store, OutputPath: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	final := latest.TXID
	// Each batch is one SQLite transaction: every state a transaction
	// restores holds whole batches, never fewer rows than the one before,
	// and the last one all of them.
	prev := 0
	for txid := uint64(1); txid <= final; txid++ {
		out := filepath.Join(t.TempDir(), "db")
		res, err := Restore(ctx, RestoreOptions{Store: store, OutputPath: out, TXID: txid})
		if err != nil {
			t.Fatalf("restore transaction %d of %d: %v", txid, final, err)
		}
		if res.TXID != txid {
			t.Fatalf("restore transaction %d gave %d", txid, res.TXID)
		}
		n := len(itemIDs(t, out))
		if got := itemIDs(t, out); n%100 != 0 || n < prev || !slices.Equal(got, seq(0, n)) {
			t.Fatalf("transaction %d: rows %d after %d, not whole batches in order", txid, n, prev)
		}
		prev = n
	}
	if prev != 300 {
		t.Fatalf("the newest transaction restores %d rows, want 300", prev)
	}
	_, last, err := Range(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "db")
	if _, err := Restore(ctx, RestoreOptions{Store: store, OutputPath: out, TXID: final + 5}); err == nil || !strings.Contains(err.Error(), "restore plan for transaction") {
		t.Fatalf("a transaction past the replica: %v", err)
	}
	if _, err := Restore(ctx, RestoreOptions{Store: store, OutputPath: out, TXID: 2, Timestamp: last}); err == nil {
		t.Fatal("a transaction and an instant were both accepted")
	}
}
