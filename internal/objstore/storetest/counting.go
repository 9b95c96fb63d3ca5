package storetest

import (
	"context"
	"io"
	"iter"
	"maps"
	"sync"

	"github.com/vwstream/vwstream/internal/objstore"
)

// Counting wraps a Store and counts its calls by operation ("put", "get",
// "stat", "list", "delete", "copy"), for tests that assert request costs.
type Counting struct {
	objstore.Store
	mu sync.Mutex
	n  map[string]int
}

// NewCounting wraps s.
func NewCounting(s objstore.Store) *Counting { return &Counting{Store: s, n: map[string]int{}} }

func (c *Counting) count(op string) {
	c.mu.Lock()
	c.n[op]++
	c.mu.Unlock()
}

// Counts returns the calls so far by operation.
func (c *Counting) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// Total returns the number of calls so far.
func (c *Counting) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := 0
	for _, v := range c.n {
		t += v
	}
	return t
}

// Take returns the calls since the last Take by operation, and starts over.
func (c *Counting) Take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

func (c *Counting) Put(ctx context.Context, key string, r io.Reader, o objstore.PutOptions) (objstore.ObjectInfo, error) {
	c.count("put")
	return c.Store.Put(ctx, key, r, o)
}

func (c *Counting) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	c.count("get")
	return c.Store.Get(ctx, key, off, n)
}

func (c *Counting) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	c.count("stat")
	return c.Store.Stat(ctx, key)
}

func (c *Counting) List(ctx context.Context, prefix string) iter.Seq2[objstore.ObjectInfo, error] {
	c.count("list")
	return c.Store.List(ctx, prefix)
}

func (c *Counting) Delete(ctx context.Context, keys ...string) error {
	c.count("delete")
	return c.Store.Delete(ctx, keys...)
}

func (c *Counting) Copy(ctx context.Context, src, dst string) (objstore.ObjectInfo, error) {
	c.count("copy")
	return c.Store.Copy(ctx, src, dst)
}
