// Package head keeps the replica's freshness record: the newest transaction
// the primary knows is in the bucket, with its lease epoch. A restore that finds
// less than the head promised (newest LTX objects deleted, an older replica
// put back) refuses unless told to accept an older state. The head is written
// through the data store, so on a sealed prefix it is sealed and bound to its
// name like every object (docs/FORMAT.md), and only a key holder can write one.
package head

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
)

// Key is the head's object name under the bucket prefix.
const Key = layout.Head

// DefaultInterval is how often a primary looks whether the head must advance.
const DefaultInterval = 10 * time.Second

// ErrOlder reports a replica older than its head.
var ErrOlder = errors.New("the replica is older than its head")

// Head is the freshness record.
type Head struct {
	TXID  uint64    `json:"txid"`  // newest transaction known to be in the replica
	Epoch uint64    `json:"epoch"` // lease epoch of the primary that wrote it
	Time  time.Time `json:"time"`  // when it was written
	Node  string    `json:"node,omitempty"`
}

// Read returns the head and its ETag; nil when there is none.
func Read(ctx context.Context, store objstore.Store) (*Head, string, error) {
	info, err := store.Stat(ctx, Key)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, "", nil
	} else if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", Key, err)
	}
	rc, err := store.Get(ctx, Key, 0, -1)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, "", nil
	} else if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", Key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 64*1024))
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", Key, err)
	}
	var h Head
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, "", fmt.Errorf("read %s: not a head record: %w", Key, err)
	}
	return &h, info.ETag, nil
}

// Writer advances the head of one primary. It never moves it back: a put is
// conditional on the head it read or wrote last, and a head another node
// advanced further is left alone.
type Writer struct {
	store objstore.Store
	etag  string
	last  Head
	read  bool
}

// NewWriter returns a Writer for the head in store.
func NewWriter(store objstore.Store) *Writer { return &Writer{store: store} }

// Advance writes h when it is ahead of the head in the bucket: a higher TXID
// under the same lease epoch, or any TXID under a newer epoch (a new primary's
// view replaces the old one's: it started from a database at least as new as
// the replica, or restored it after Check). It reports whether it wrote.
func (w *Writer) Advance(ctx context.Context, h Head) (bool, error) {
	for attempt := 0; ; attempt++ {
		if !w.read {
			cur, etag, err := Read(ctx, w.store)
			if err != nil {
				return false, err
			}
			w.etag, w.read = etag, true
			if cur != nil {
				w.last = *cur
			}
		}
		if h.Epoch < w.last.Epoch || (h.Epoch == w.last.Epoch && h.TXID <= w.last.TXID) {
			return false, nil
		}
		if h.Time.IsZero() {
			h.Time = time.Now().UTC()
		}
		b, err := json.Marshal(h)
		if err != nil {
			return false, err
		}
		opts := objstore.PutOptions{IfMatch: w.etag, ContentType: "application/json"}
		if w.etag == "" {
			opts = objstore.PutOptions{IfNoneMatch: true, ContentType: "application/json"}
		}
		info, err := w.store.Put(ctx, Key, bytes.NewReader(b), opts)
		if errors.Is(err, objstore.ErrPrecondition) && attempt == 0 {
			w.read = false // someone else wrote it: read again and compare
			continue
		} else if err != nil {
			return false, fmt.Errorf("write %s: %w", Key, err)
		}
		w.etag, w.last = info.ETag, h
		return true, nil
	}
}

// Check compares the newest transaction a replica holds with its head. A
// replica without a head (written before heads existed) passes.
func Check(ctx context.Context, store objstore.Store, replicaTXID uint64) error {
	h, _, err := Read(ctx, store)
	if err != nil || h == nil {
		return err
	}
	if replicaTXID < h.TXID {
		return fmt.Errorf("%w: it ends at transaction %d, but the head written %s (lease epoch %d) promised %d: "+
			"the LTX objects of transactions %d..%d are missing (deleted, or an older replica put back); "+
			"`vwstream restore --accept-older` restores the older state anyway",
			ErrOlder, replicaTXID, h.Time.UTC().Format(time.RFC3339), h.Epoch, h.TXID, replicaTXID+1, h.TXID)
	}
	return nil
}
