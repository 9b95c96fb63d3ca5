// Package storetest is the conformance suite every objstore.Store passes:
// the behaviour callers rely on, run against a real store.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/vwstream/vwstream/internal/objstore"
)

// Target is a fresh, empty store for one test.
type Target struct {
	Store objstore.Store
	// Pending lists uploads the store keeps out of sight (S3 multipart
	// uploads); nil for stores without such state.
	Pending func(ctx context.Context) ([]string, error)
	// PartSize is the store's multipart part size, 0 when it has none; the
	// suite sizes its streams to cross part boundaries.
	PartSize int
}

// Run runs the suite; newTarget is called once per subtest.
func Run(t *testing.T, newTarget func(t *testing.T) Target) {
	tests := []struct {
		name string
		fn   func(t *testing.T, tg Target)
	}{
		{"PutGetStat", testPutGetStat},
		{"Empty", testEmpty},
		{"LargeUnknownLength", testLarge},
		{"RangedGet", testRangedGet},
		{"List", testList},
		{"Delete", testDelete},
		{"Copy", testCopy},
		{"Conditional", testConditional},
		{"NotFound", testNotFound},
		{"InvalidKey", testInvalidKey},
		{"ReaderFails", testReaderFails},
		{"Cancel", testCancel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newTarget(t))
		})
	}
}

// opaque hides everything but Read, so a store cannot learn the length.
type opaque struct{ r io.Reader }

func (o opaque) Read(p []byte) (int, error) { return o.r.Read(p) }

// random is a reproducible stream of n pseudo-random bytes.
func random(seed uint64, n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}), n)
}

func put(t *testing.T, s objstore.Store, key string, data []byte) objstore.ObjectInfo {
	t.Helper()
	info, err := s.Put(t.Context(), key, opaque{bytes.NewReader(data)}, objstore.PutOptions{})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return info
}

func get(t *testing.T, s objstore.Store, key string, off, n int64) []byte {
	t.Helper()
	rc, err := s.Get(t.Context(), key, off, n)
	if err != nil {
		t.Fatalf("get %s [%d,%d]: %v", key, off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func keys(t *testing.T, s objstore.Store, prefix string) []string {
	t.Helper()
	var ks []string
	for info, err := range s.List(t.Context(), prefix) {
		if err != nil {
			t.Fatalf("list %q: %v", prefix, err)
		}
		ks = append(ks, info.Key)
	}
	return ks
}

func testPutGetStat(t *testing.T, tg Target) {
	s := tg.Store
	data := []byte("attachment bytes")
	info := put(t, s, "files/attachments/c1/a1", data)
	if got, want := info.Key, "files/attachments/c1/a1"; got != want {
		t.Errorf("put key = %q, want %q", got, want)
	}
	if got, want := info.Size, int64(len(data)); got != want {
		t.Errorf("put size = %d, want %d", got, want)
	}
	if info.ETag == "" {
		t.Error("put returned no ETag")
	}
	if got := get(t, s, "files/attachments/c1/a1", 0, -1); !bytes.Equal(got, data) {
		t.Errorf("get = %q, want %q", got, data)
	}
	st, err := s.Stat(t.Context(), "files/attachments/c1/a1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != info.Size || st.ETag != info.ETag || st.ModTime.IsZero() {
		t.Errorf("stat = %+v, put = %+v", st, info)
	}
	// Overwriting replaces content and changes the ETag.
	info2 := put(t, s, "files/attachments/c1/a1", []byte("v2"))
	if got := get(t, s, "files/attachments/c1/a1", 0, -1); string(got) != "v2" {
		t.Errorf("after overwrite get = %q", got)
	}
	if info2.ETag == info.ETag {
		t.Errorf("ETag unchanged after overwrite: %q", info2.ETag)
	}
}

func testEmpty(t *testing.T, tg Target) {
	info := put(t, tg.Store, "empty", nil)
	if info.Size != 0 {
		t.Errorf("size = %d", info.Size)
	}
	if got := get(t, tg.Store, "empty", 0, -1); len(got) != 0 {
		t.Errorf("get = %q", got)
	}
	if got := get(t, tg.Store, "empty", 5, -1); len(got) != 0 {
		t.Errorf("get past end = %q", got)
	}
}

func testLarge(t *testing.T, tg Target) {
	const size = 50 << 20
	h := sha256.New()
	info, err := tg.Store.Put(t.Context(), "snapshots/big", opaque{io.TeeReader(random(1, size), h)}, objstore.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != size {
		t.Errorf("size = %d, want %d", info.Size, size)
	}
	want := h.Sum(nil)
	rc, err := tg.Store.Get(t.Context(), "snapshots/big", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h.Reset()
	if n, err := io.Copy(h, rc); err != nil || n != size {
		t.Fatalf("read back %d bytes: %v", n, err)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		t.Errorf("sha256 read back %x, want %x", got, want)
	}
}

func testRangedGet(t *testing.T, tg Target) {
	data := []byte("0123456789abcdef")
	put(t, tg.Store, "r", data)
	for _, tc := range []struct {
		off, n int64
		want   string
	}{
		{0, 4, "0123"},
		{5, 3, "567"},
		{10, -1, "abcdef"},
		{12, 100, "cdef"},
		{15, 1, "f"},
		{16, -1, ""},
		{100, 10, ""},
		{3, 0, ""},
	} {
		if got := get(t, tg.Store, "r", tc.off, tc.n); string(got) != tc.want {
			t.Errorf("get(%d, %d) = %q, want %q", tc.off, tc.n, got, tc.want)
		}
	}
}

func testList(t *testing.T, tg Target) {
	s := tg.Store
	const n = 1100 // more than one S3 page of 1000
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("db/%05d", i))
	}
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 16)
		errs = make(chan error, n)
	)
	for _, k := range want {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := s.Put(t.Context(), k, strings.NewReader(k), objstore.PutOptions{}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// "a-b" sorts before "a/c" in byte order although "a" is a directory.
	for _, k := range []string{"a/c", "a-b", "a/b/z", "ab", "dbx", "a0"} {
		put(t, s, k, []byte(k))
	}
	got := keys(t, s, "db/")
	if len(got) != n {
		t.Fatalf("list db/ = %d keys, want %d", len(got), n)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("list db/ [%d] = %q, want %q", i, got[i], want[i])
		}
	}
	if got, want := strings.Join(keys(t, s, "a"), " "), "a-b a/b/z a/c a0 ab"; got != want {
		t.Errorf("list a = %q, want %q", got, want)
	}
	if got, want := strings.Join(keys(t, s, "a/"), " "), "a/b/z a/c"; got != want {
		t.Errorf("list a/ = %q, want %q", got, want)
	}
	if got, want := len(keys(t, s, "")), n+6; got != want {
		t.Errorf("list all = %d keys, want %d", got, want)
	}
	if got := keys(t, s, "nothing/"); len(got) != 0 {
		t.Errorf("list nothing/ = %q", got)
	}
	// Stopping early is allowed.
	for range s.List(t.Context(), "db/") {
		break
	}
	for info, err := range s.List(t.Context(), "dbx") {
		if err != nil || info.Size != 3 || info.ETag == "" || info.ModTime.IsZero() {
			t.Errorf("list dbx = %+v, %v", info, err)
		}
	}
}

func testDelete(t *testing.T, tg Target) {
	s := tg.Store
	put(t, s, "files/sends/s1/f", []byte("x"))
	put(t, s, "files/sends/s2/f", []byte("y"))
	if err := s.Delete(t.Context(), "files/sends/s1/f", "files/missing"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(t.Context(), "files/sends/s1/f"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("stat deleted = %v, want ErrNotFound", err)
	}
	if got, want := strings.Join(keys(t, s, ""), " "), "files/sends/s2/f"; got != want {
		t.Errorf("list = %q, want %q", got, want)
	}
	if err := s.Delete(t.Context()); err != nil {
		t.Errorf("delete nothing: %v", err)
	}
	// A key whose parent was removed with the last object can be written again.
	put(t, s, "files/sends/s1/f", []byte("z"))
}

func testCopy(t *testing.T, tg Target) {
	s := tg.Store
	put(t, s, "snapshots/a.tar.gz", []byte("snapshot"))
	info, err := s.Copy(t.Context(), "snapshots/a.tar.gz", "snapshots/latest.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	if info.Key != "snapshots/latest.tar.gz" || info.Size != 8 {
		t.Errorf("copy info = %+v", info)
	}
	if got := get(t, s, "snapshots/latest.tar.gz", 0, -1); string(got) != "snapshot" {
		t.Errorf("copy = %q", got)
	}
	if got := get(t, s, "snapshots/a.tar.gz", 0, -1); string(got) != "snapshot" {
		t.Errorf("source after copy = %q", got)
	}
	if _, err := s.Copy(t.Context(), "snapshots/none", "x"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("copy missing = %v, want ErrNotFound", err)
	}
}

func testConditional(t *testing.T, tg Target) {
	s := tg.Store
	ctx := t.Context()
	first, err := s.Put(ctx, "lease", strings.NewReader("a"), objstore.PutOptions{IfNoneMatch: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "lease", strings.NewReader("b"), objstore.PutOptions{IfNoneMatch: true}); !errors.Is(err, objstore.ErrPrecondition) {
		t.Fatalf("second create = %v, want ErrPrecondition", err)
	}
	second, err := s.Put(ctx, "lease", strings.NewReader("c"), objstore.PutOptions{IfMatch: first.ETag})
	if err != nil {
		t.Fatalf("put with current etag: %v", err)
	}
	if _, err := s.Put(ctx, "lease", strings.NewReader("d"), objstore.PutOptions{IfMatch: first.ETag}); !errors.Is(err, objstore.ErrPrecondition) {
		t.Fatalf("put with stale etag = %v, want ErrPrecondition", err)
	}
	if got := get(t, s, "lease", 0, -1); string(got) != "c" {
		t.Errorf("lease = %q, want c", got)
	}
	if _, err := s.Put(ctx, "nolease", strings.NewReader("e"), objstore.PutOptions{IfMatch: second.ETag}); !errors.Is(err, objstore.ErrPrecondition) {
		t.Errorf("IfMatch on a missing key = %v, want ErrPrecondition", err)
	}
	// Racing creators: exactly one wins.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Put(ctx, "race", strings.NewReader(fmt.Sprint(i)), objstore.PutOptions{IfNoneMatch: true})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, objstore.ErrPrecondition):
				t.Errorf("racing create: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d racing creators won, want 1", wins)
	}
	// A multipart upload honours the condition too.
	if tg.PartSize > 0 {
		big := random(2, int64(tg.PartSize)+1000)
		if _, err := s.Put(ctx, "lease", opaque{big}, objstore.PutOptions{IfNoneMatch: true}); !errors.Is(err, objstore.ErrPrecondition) {
			t.Errorf("multipart create over existing = %v, want ErrPrecondition", err)
		}
		big = random(2, int64(tg.PartSize)+1000)
		if _, err := s.Put(ctx, "lease", opaque{big}, objstore.PutOptions{IfMatch: first.ETag}); !errors.Is(err, objstore.ErrPrecondition) {
			t.Errorf("multipart put with stale etag = %v, want ErrPrecondition", err)
		}
		big = random(2, int64(tg.PartSize)+1000)
		if _, err := s.Put(ctx, "lease", opaque{big}, objstore.PutOptions{IfMatch: second.ETag}); err != nil {
			t.Errorf("multipart put with current etag: %v", err)
		}
		assertNoPending(t, tg)
	}
}

func testNotFound(t *testing.T, tg Target) {
	s := tg.Store
	if _, err := s.Stat(t.Context(), "missing"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("stat = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(t.Context(), "missing", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("get = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(t.Context(), "dir/missing", 10, 5); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("ranged get = %v, want ErrNotFound", err)
	}
}

func testInvalidKey(t *testing.T, tg Target) {
	for _, k := range []string{"", "/abs", "a//b", "a/../b", "..", "./a", `a\b`, "a/"} {
		if _, err := tg.Store.Put(t.Context(), k, strings.NewReader("x"), objstore.PutOptions{}); err == nil {
			t.Errorf("put %q succeeded", k)
		}
		if _, err := tg.Store.Stat(t.Context(), k); err == nil || errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("stat %q = %v, want an invalid-key error", k, err)
		}
	}
}

// failingReader yields n good bytes, then err.
type failingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

func assertNothing(t *testing.T, tg Target, key string) {
	t.Helper()
	if _, err := tg.Store.Stat(t.Context(), key); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("stat %s after failed put = %v, want ErrNotFound", key, err)
	}
	if got := keys(t, tg.Store, ""); len(got) != 0 {
		t.Errorf("objects after failed put: %q", got)
	}
	assertNoPending(t, tg)
}

func assertNoPending(t *testing.T, tg Target) {
	t.Helper()
	if tg.Pending == nil {
		return
	}
	p, err := tg.Pending(context.WithoutCancel(t.Context()))
	if err != nil {
		t.Fatalf("pending uploads: %v", err)
	}
	if len(p) != 0 {
		t.Errorf("pending uploads left behind: %q", p)
	}
}

func testReaderFails(t *testing.T, tg Target) {
	boom := errors.New("disk on fire")
	sizes := []int64{100}
	if tg.PartSize > 0 {
		sizes = append(sizes, int64(tg.PartSize)*2+100) // fails in the third part
	} else {
		sizes = append(sizes, 10<<20)
	}
	for _, n := range sizes {
		key := fmt.Sprintf("fail-%d", n)
		_, err := tg.Store.Put(t.Context(), key, &failingReader{random(3, 1<<40), n, boom}, objstore.PutOptions{})
		if !errors.Is(err, boom) {
			t.Errorf("put failing after %d bytes = %v, want the reader's error", n, err)
		}
		t.Logf("reader failing after %d bytes: %v", n, err)
		assertNothing(t, tg, key)
	}
}

// cancelReader cancels its context after n bytes and keeps on giving data.
type cancelReader struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= int64(n); c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func testCancel(t *testing.T, tg Target) {
	n := int64(10 << 20)
	if tg.PartSize > 0 {
		n = int64(tg.PartSize)*2 + 100
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := tg.Store.Put(ctx, "cancelled", &cancelReader{random(4, 1<<40), n, cancel}, objstore.PutOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("put cancelled midway = %v, want context.Canceled", err)
	}
	t.Logf("cancelled: %v", err)
	assertNothing(t, tg, "cancelled")
}
