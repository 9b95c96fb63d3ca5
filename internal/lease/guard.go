package lease

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/vwstream/vwstream/internal/objstore"
)

// Guard is a Store whose writes (Put, Copy, Delete) go through only while the
// bound lease is held and confirmed: the fence on a primary's writers at the
// one place they all pass. Reads always go through. Before Bind it lets every
// write pass: nothing writes data before the lease is taken, and the bucket
// key is created through it meanwhile.
type Guard struct {
	objstore.Store
	lease atomic.Pointer[Lease]
}

// NewGuard wraps s; Bind gives it the lease to check.
func NewGuard(s objstore.Store) *Guard { return &Guard{Store: s} }

// Bind makes writes depend on l from now on.
func (g *Guard) Bind(l *Lease) { g.lease.Store(l) }

func (g *Guard) check(op, key string) error {
	if l := g.lease.Load(); l != nil {
		if err := l.writable(); err != nil {
			return fmt.Errorf("%s %s: %w", op, key, err)
		}
	}
	return nil
}

// Put writes when the lease allows it.
func (g *Guard) Put(ctx context.Context, key string, r io.Reader, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	if err := g.check("put", key); err != nil {
		return objstore.ObjectInfo{}, err
	}
	return g.Store.Put(ctx, key, r, opts)
}

// Copy copies when the lease allows it.
func (g *Guard) Copy(ctx context.Context, src, dst string) (objstore.ObjectInfo, error) {
	if err := g.check("copy", dst); err != nil {
		return objstore.ObjectInfo{}, err
	}
	return g.Store.Copy(ctx, src, dst)
}

// Delete deletes when the lease allows it.
func (g *Guard) Delete(ctx context.Context, keys ...string) error {
	if len(keys) > 0 {
		if err := g.check("delete", keys[0]); err != nil {
			return err
		}
	}
	return g.Store.Delete(ctx, keys...)
}
