package status

import (
	"context"
	"errors"
	"io"
	"iter"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vwstream/vwstream/internal/objstore"
)

// Instrument wraps s so that its operations, failures and bytes are counted under
// the label store=name ("s3", "local", "rclone:NAME"). The wrapper hides s's
// concrete type; Unwrap returns it.
func (m *Metrics) Instrument(name string, s objstore.Store) objstore.Store {
	return &countingStore{
		Store: s,
		m:     m,
		name:  name,
		up:    m.bytes.WithLabelValues(name, "up"),
		down:  m.bytes.WithLabelValues(name, "down"),
	}
}

// countingStore is a Store that counts what passes through it.
type countingStore struct {
	objstore.Store
	m        *Metrics
	name     string
	up, down prometheus.Counter
}

// Unwrap returns the store being counted.
func (c *countingStore) Unwrap() objstore.Store { return c.Store }

// done counts one operation and, unless err is an expected outcome, one failure.
func (c *countingStore) done(op string, err error) {
	c.m.requests.WithLabelValues(c.name, op).Inc()
	if err != nil && !errors.Is(err, objstore.ErrNotFound) && !errors.Is(err, objstore.ErrPrecondition) &&
		!errors.Is(err, context.Canceled) {
		c.m.errors.WithLabelValues(c.name, op).Inc()
	}
}

func (c *countingStore) Put(ctx context.Context, key string, r io.Reader, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	oi, err := c.Store.Put(ctx, key, r, opts)
	if err == nil {
		c.up.Add(float64(oi.Size))
	}
	c.done("put", err)
	return oi, err
}

func (c *countingStore) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	rc, err := c.Store.Get(ctx, key, offset, length)
	c.done("get", err)
	if err != nil {
		return nil, err
	}
	return &countingReader{ReadCloser: rc, n: c.down}, nil
}

func (c *countingStore) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	oi, err := c.Store.Stat(ctx, key)
	c.done("stat", err)
	return oi, err
}

func (c *countingStore) List(ctx context.Context, prefix string) iter.Seq2[objstore.ObjectInfo, error] {
	return func(yield func(objstore.ObjectInfo, error) bool) {
		var failed error
		defer func() { c.done("list", failed) }()
		for oi, err := range c.Store.List(ctx, prefix) {
			if err != nil {
				failed = err
			}
			if !yield(oi, err) {
				return
			}
		}
	}
}

func (c *countingStore) Delete(ctx context.Context, keys ...string) error {
	err := c.Store.Delete(ctx, keys...)
	c.done("delete", err)
	return err
}

func (c *countingStore) Copy(ctx context.Context, src, dst string) (objstore.ObjectInfo, error) {
	oi, err := c.Store.Copy(ctx, src, dst)
	c.done("copy", err)
	return oi, err
}

// countingReader counts the bytes read from a Get.
type countingReader struct {
	io.ReadCloser
	n prometheus.Counter
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if n > 0 {
		r.n.Add(float64(n))
	}
	return n, err
}
