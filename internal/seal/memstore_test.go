package seal_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"iter"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/objstore/storetest"
)

// memStore is a minimal in-memory objstore.Store with the contract's semantics
// (conditional puts, ranged gets, ordered listing), for the tests that run
// without a real store.
type memStore struct {
	mu      sync.Mutex
	objects map[string]memObject
}

type memObject struct {
	data        []byte
	etag        string
	contentType string
	mod         time.Time
}

func newMemStore() *memStore { return &memStore{objects: map[string]memObject{}} }

func (m *memStore) Put(ctx context.Context, key string, r io.Reader, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, exists := m.objects[key]
	if opts.IfNoneMatch && exists {
		return objstore.ObjectInfo{}, fmt.Errorf("put %s: %w", key, objstore.ErrPrecondition)
	}
	if opts.IfMatch != "" && (!exists || old.etag != opts.IfMatch) {
		return objstore.ObjectInfo{}, fmt.Errorf("put %s: %w", key, objstore.ErrPrecondition)
	}
	sum := sha256.Sum256(data)
	o := memObject{data: data, etag: hex.EncodeToString(sum[:16]), contentType: opts.ContentType, mod: time.Now()}
	m.objects[key] = o
	return o.info(key), nil
}

func (o memObject) info(key string) objstore.ObjectInfo {
	return objstore.ObjectInfo{Key: key, Size: int64(len(o.data)), ModTime: o.mod, ETag: o.etag}
}

func (m *memStore) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[key]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, objstore.ErrNotFound)
	}
	if offset > int64(len(o.data)) {
		return nil, fmt.Errorf("get %s: offset %d out of range", key, offset)
	}
	data := o.data[offset:]
	if length >= 0 && length < int64(len(data)) {
		data = data[:length]
	}
	return io.NopCloser(bytes.NewReader(bytes.Clone(data))), nil
}

func (m *memStore) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[key]
	if !ok {
		return objstore.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, objstore.ErrNotFound)
	}
	return o.info(key), nil
}

func (m *memStore) List(ctx context.Context, prefix string) iter.Seq2[objstore.ObjectInfo, error] {
	m.mu.Lock()
	var infos []objstore.ObjectInfo
	for k, o := range m.objects {
		if strings.HasPrefix(k, prefix) {
			infos = append(infos, o.info(k))
		}
	}
	m.mu.Unlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	return func(yield func(objstore.ObjectInfo, error) bool) {
		for _, info := range infos {
			if !yield(info, nil) {
				return
			}
		}
	}
}

func (m *memStore) Delete(ctx context.Context, keys ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.objects, k)
	}
	return nil
}

func (m *memStore) Copy(ctx context.Context, src, dst string) (objstore.ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[src]
	if !ok {
		return objstore.ObjectInfo{}, fmt.Errorf("copy %s: %w", src, objstore.ErrNotFound)
	}
	o.mod = time.Now()
	m.objects[dst] = o
	return o.info(dst), nil
}

func (m *memStore) String() string { return "mem://" }

// takeGetsStats returns the Gets and Stats made since the last call.
func takeGetsStats(c *storetest.Counting) (gets, stats int) {
	n := c.Take()
	return n["get"], n["stat"]
}
