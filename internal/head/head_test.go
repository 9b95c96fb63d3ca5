package head_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/head"
	"github.com/vwstream/vwstream/internal/objstore"
)

func TestWriter_Monotonic(t *testing.T) {
	ctx := context.Background()
	store, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := head.Check(ctx, store, 0); err != nil {
		t.Fatalf("no head: %v", err)
	}
	w := head.NewWriter(store)
	for _, step := range []struct {
		h     head.Head
		wrote bool
	}{
		{head.Head{TXID: 10, Epoch: 1}, true},
		{head.Head{TXID: 10, Epoch: 1}, false},
		{head.Head{TXID: 9, Epoch: 1}, false}, // never back under the same primary
		{head.Head{TXID: 12, Epoch: 1}, true},
		{head.Head{TXID: 20, Epoch: 0}, false}, // an older primary's view
		{head.Head{TXID: 11, Epoch: 2}, true},  // a new primary's view replaces it
	} {
		wrote, err := w.Advance(ctx, step.h)
		if err != nil || wrote != step.wrote {
			t.Fatalf("Advance(%+v) = %t, %v; want %t", step.h, wrote, err, step.wrote)
		}
	}
	// A second writer (another node) sees the head and does not move it back.
	if wrote, err := head.NewWriter(store).Advance(ctx, head.Head{TXID: 5, Epoch: 2}); err != nil || wrote {
		t.Fatalf("second writer: %t, %v", wrote, err)
	}
	h, _, err := head.Read(ctx, store)
	if err != nil || h.TXID != 11 || h.Epoch != 2 {
		t.Fatalf("head = %+v, %v", h, err)
	}
	if err := head.Check(ctx, store, 11); err != nil {
		t.Fatalf("replica at the head: %v", err)
	}
	err = head.Check(ctx, store, 8)
	if !errors.Is(err, head.ErrOlder) || !strings.Contains(err.Error(), "9..11") || !strings.Contains(err.Error(), "--accept-older") {
		t.Fatalf("replica behind the head: %v", err)
	}
}
