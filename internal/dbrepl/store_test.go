package dbrepl

import (
	"bytes"
	"context"
	"crypto/md5"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"iter"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/objstore"
)

// memStore is an in-memory objstore.Store for tests: the real local and S3
// stores are tested in their own package; this one can corrupt objects on demand.
type memStore struct {
	mu   sync.Mutex
	objs map[string]memObject
	skew time.Duration // added to modification times, like a server whose clock is off
}

type memObject struct {
	data []byte
	mod  time.Time
}

func newMemStore() *memStore { return &memStore{objs: map[string]memObject{}} }

func (s *memStore) Put(ctx context.Context, key string, r io.Reader, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objs[key]; ok && opts.IfNoneMatch {
		return objstore.ObjectInfo{}, objstore.ErrPrecondition
	}
	s.objs[key] = memObject{data: b, mod: time.Now()}
	return s.info(key), nil
}

func (s *memStore) info(key string) objstore.ObjectInfo {
	o := s.objs[key]
	sum := md5.Sum(o.data)
	return objstore.ObjectInfo{Key: key, Size: int64(len(o.data)), ModTime: o.mod.Add(s.skew), ETag: hex.EncodeToString(sum[:])}
}

func (s *memStore) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objs[key]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, objstore.ErrNotFound)
	}
	b := o.data[min(offset, int64(len(o.data))):]
	if length >= 0 && length < int64(len(b)) {
		b = b[:length]
	}
	return io.NopCloser(bytes.NewReader(slices.Clone(b))), nil
}

func (s *memStore) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objs[key]; !ok {
		return objstore.ObjectInfo{}, objstore.ErrNotFound
	}
	return s.info(key), nil
}

func (s *memStore) List(ctx context.Context, prefix string) iter.Seq2[objstore.ObjectInfo, error] {
	return func(yield func(objstore.ObjectInfo, error) bool) {
		s.mu.Lock()
		var infos []objstore.ObjectInfo
		for k := range s.objs {
			if strings.HasPrefix(k, prefix) {
				infos = append(infos, s.info(k))
			}
		}
		s.mu.Unlock()
		slices.SortFunc(infos, func(a, b objstore.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
		for _, oi := range infos {
			if !yield(oi, nil) {
				return
			}
		}
	}
}

func (s *memStore) Delete(ctx context.Context, keys ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.objs, k)
	}
	return nil
}

func (s *memStore) Copy(ctx context.Context, src, dst string) (objstore.ObjectInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objs[src]
	if !ok {
		return objstore.ObjectInfo{}, objstore.ErrNotFound
	}
	s.objs[dst] = memObject{data: slices.Clone(o.data), mod: time.Now()}
	return s.info(dst), nil
}

func (s *memStore) String() string { return "mem://" }

// keys returns the stored keys under prefix, sorted.
func (s *memStore) keys(prefix string) []string {
	var keys []string
	for oi := range s.List(context.Background(), prefix) {
		keys = append(keys, oi.Key)
	}
	return keys
}

// mutate rewrites one object in place, keeping its modification time.
func (s *memStore) mutate(key string, fn func([]byte) []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objs[key]
	o.data = fn(slices.Clone(o.data))
	s.objs[key] = o
}

// openTestDB creates (or opens) a WAL-mode database with an items table,
// configured like Vaultwarden's connections.
func openTestDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)&_pragma=synchronous(normal)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// insertBatch inserts ids [from, to) in one transaction.
func insertBatch(t testing.TB, db *sql.DB, from, to int) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for id := from; id < to; id++ {
		if _, err := tx.Exec(`INSERT INTO items (id, body) VALUES (?, ?)`, id, strings.Repeat("x", 200)+fmt.Sprint(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// itemIDs returns the ids stored in the database file at path.
func itemIDs(t testing.TB, path string) []int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id FROM items ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// seq returns [from, to).
func seq(from, to int) []int {
	var a []int
	for i := from; i < to; i++ {
		a = append(a, i)
	}
	return a
}

// startReplicator starts replicating path to store with a fast test interval.
func startReplicator(t testing.TB, path string, store objstore.Store) *Replicator {
	t.Helper()
	r, err := New(Options{DBPath: path, Store: store, SyncInterval: 100 * time.Millisecond, ShutdownTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

// waitSynced waits until everything litestream captured is in the store.
func waitSynced(t testing.TB, r *Replicator, minTXID uint64) Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := r.Status()
		if st.LocalTXID >= minTXID && st.ReplicatedTXID >= st.LocalTXID && st.LocalTXID > 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("replication did not catch up: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tempDB(t testing.TB) string {
	return filepath.Join(t.TempDir(), "db.sqlite3")
}

// failingStore fails every Put once failPuts is set, like an unreachable bucket.
type failingStore struct {
	*memStore
	failPuts atomic.Bool
}

func (s *failingStore) Put(ctx context.Context, key string, r io.Reader, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	if s.failPuts.Load() {
		return objstore.ObjectInfo{}, fmt.Errorf("put %s: connection refused", key)
	}
	return s.memStore.Put(ctx, key, r, opts)
}
