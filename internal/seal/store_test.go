package seal_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/objstore/storetest"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/testenv"
)

// backends are the inner stores every Store test runs against.
var backends = []struct {
	name string
	open func(t testing.TB) objstore.Store
}{
	{"mem", func(t testing.TB) objstore.Store { return newMemStore() }},
	{"local", func(t testing.TB) objstore.Store {
		l, err := objstore.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return l
	}},
	{"s3", func(t testing.TB) objstore.Store {
		env := testenv.NewS3(t)
		s, err := objstore.NewS3(t.Context(), objstore.S3Options{
			Endpoint: env.Endpoint, Region: env.Region, Bucket: env.Bucket, Prefix: "vaultwarden",
			AccessKeyID: env.AccessKey, SecretAccessKey: env.SecretKey, ForcePathStyle: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
}

func forEachBackend(t *testing.T, f func(t *testing.T, inner objstore.Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.open(t)) })
	}
}

func getAll(t testing.TB, s objstore.Store, key string, off, length int64) ([]byte, error) {
	t.Helper()
	rc, err := s.Get(context.Background(), key, off, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestStore_RoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, inner objstore.Store) {
		ctx := t.Context()
		k := mustKey(t)
		s := seal.NewStore(inner, k)
		for _, n := range sizes {
			key := fmt.Sprintf("db/obj-%07d", n)
			plain := randomBytes(t, n)
			info, err := s.Put(ctx, key, bytes.NewReader(plain), objstore.PutOptions{ContentType: "application/json"})
			if err != nil {
				t.Fatal(err)
			}
			if info.Size != int64(n) || info.ETag == "" {
				t.Fatalf("Put info = %+v, want size %d and an ETag", info, n)
			}
			got, err := getAll(t, s, key, 0, -1)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("Get %s: %d bytes, %v; want the %d bytes put", key, len(got), err, n)
			}
			if st, err := s.Stat(ctx, key); err != nil || st.Size != int64(n) || st.ETag != info.ETag {
				t.Fatalf("Stat = %+v, %v; want size %d, ETag %s", st, err, n, info.ETag)
			}
			// The bucket holder sees an age file of the sealed size, not the plaintext.
			raw, err := getAll(t, inner, key, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(raw)) != seal.SealedSize(int64(n)) || !bytes.HasPrefix(raw, []byte("age-encryption.org/v1\n-> X25519 ")) {
				t.Fatalf("stored object: %d bytes starting %q", len(raw), raw[:min(len(raw), 40)])
			}
			if n > 16 && bytes.Contains(raw, plain[:16]) {
				t.Fatal("stored object contains plaintext")
			}
		}
		var listed []objstore.ObjectInfo
		for info, err := range s.List(ctx, "db/") {
			if err != nil {
				t.Fatal(err)
			}
			listed = append(listed, info)
		}
		if len(listed) != len(sizes) {
			t.Fatalf("listed %d objects, want %d", len(listed), len(sizes))
		}
		for i, info := range listed {
			if info.Size != int64(sizes[i]) {
				t.Errorf("List %s size = %d, want %d", info.Key, info.Size, sizes[i])
			}
		}
	})
}

func TestStore_Get_Range(t *testing.T) {
	forEachBackend(t, func(t *testing.T, inner objstore.Store) {
		s := seal.NewStore(inner, mustKey(t))
		for _, n := range []int{100, 5*seal.ChunkSize + 123} { // one small, one multi-chunk object
			plain := randomBytes(t, n)
			key := fmt.Sprintf("files/attachments/%d", n)
			if _, err := s.Put(t.Context(), key, bytes.NewReader(plain), objstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, r := range chunkBoundaryRanges(n) {
				got, err := getAll(t, s, key, int64(r[0]), int64(r[1]-r[0]))
				if err != nil {
					t.Fatalf("Get [%d,%d): %v", r[0], r[1], err)
				}
				if !bytes.Equal(got, plain[r[0]:r[1]]) {
					t.Fatalf("Get [%d,%d) = %d bytes, differs from the plaintext", r[0], r[1], len(got))
				}
			}
			// To the end from an offset, and past the end.
			for _, off := range []int{1, seal.ChunkSize, n - 1, n, n + 10} {
				got, err := getAll(t, s, key, int64(off), -1)
				if want := plain[min(off, n):]; err != nil || !bytes.Equal(got, want) {
					t.Fatalf("Get from %d: %d bytes, %v; want %d bytes", off, len(got), err, len(want))
				}
			}
		}
	})
}

// A ranged read costs a fixed number of requests, not one per chunk.
func TestStore_Get_RangeRequests(t *testing.T) {
	inner := storetest.NewCounting(newMemStore())
	s := seal.NewStore(inner, mustKey(t))
	plain := randomBytes(t, 8<<20)
	if _, err := s.Put(t.Context(), "db/big", bytes.NewReader(plain), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name        string
		off, length int64
		gets, stats int
	}{
		{"whole object", 0, -1, 1, 0},
		{"1 MiB in the middle", 3<<20 + 5, 1 << 20, 3, 1},
		{"to the end", 5 << 20, -1, 3, 1},
		{"one byte", 7 << 20, 1, 3, 1},
	} {
		_, _ = takeGetsStats(inner)
		got, err := getAll(t, s, "db/big", c.off, c.length)
		if err != nil {
			t.Fatal(err)
		}
		end := int64(len(plain))
		if c.length >= 0 {
			end = c.off + c.length
		}
		if !bytes.Equal(got, plain[c.off:end]) {
			t.Fatalf("%s: wrong bytes", c.name)
		}
		if gets, stats := takeGetsStats(inner); gets > c.gets || stats > c.stats {
			t.Errorf("%s: %d gets and %d stats, want at most %d and %d", c.name, gets, stats, c.gets, c.stats)
		}
	}
	// A small object is read whole: one Stat and one Get.
	if _, err := s.Put(t.Context(), "db/small", bytes.NewReader(plain[:100<<10]), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, _ = takeGetsStats(inner)
	if _, err := getAll(t, s, "db/small", 70<<10, 10); err != nil {
		t.Fatal(err)
	}
	if gets, stats := takeGetsStats(inner); gets != 1 || stats != 1 {
		t.Errorf("small object: %d gets and %d stats, want 1 and 1", gets, stats)
	}
}

// Damage in the bucket is an error on every path, never silent garbage.
func TestStore_Get_Damaged(t *testing.T) {
	forEachBackend(t, func(t *testing.T, inner objstore.Store) {
		ctx := t.Context()
		s := seal.NewStore(inner, mustKey(t))
		plain := randomBytes(t, 6*seal.ChunkSize+9)
		if _, err := s.Put(ctx, "db/x", bytes.NewReader(plain), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		raw, err := getAll(t, inner, "db/x", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		encChunk := seal.ChunkSize + seal.TagSize
		flipped := bytes.Clone(raw)
		flipped[seal.PayloadOffset+2*encChunk+100] ^= 0x80 // inside the third chunk
		damaged := map[string][]byte{
			"flipped":          flipped,
			"truncated":        raw[:len(raw)-1],
			"last chunk gone":  raw[:seal.PayloadOffset+6*encChunk],
			"tail chunks gone": raw[:seal.PayloadOffset+3*encChunk+50],
		}
		for name, data := range damaged {
			if _, err := inner.Put(ctx, "db/x", bytes.NewReader(data), objstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := getAll(t, s, "db/x", 0, -1); !errors.Is(err, seal.ErrCorrupt) {
				t.Errorf("%s: whole read error = %v, want ErrCorrupt", name, err)
			}
			// The third chunk for the flipped object; an intact first chunk for
			// the truncated ones, which must fail all the same.
			if _, err := getAll(t, s, "db/x", 2*seal.ChunkSize+10, 1000); name == "flipped" && !errors.Is(err, seal.ErrCorrupt) {
				t.Errorf("%s: ranged read error = %v, want ErrCorrupt", name, err)
			}
			if _, err := getAll(t, s, "db/x", 10, 1000); name != "flipped" && !errors.Is(err, seal.ErrCorrupt) {
				t.Errorf("%s: ranged read of the first chunk: error = %v, want ErrCorrupt", name, err)
			}
		}
		// Objects that are not sealed at all: a size no sealed object can have is
		// an error for Stat and List; any plain object is an error for Get.
		for key, n := range map[string]int{"db/plain": 1000, "db/tiny": 100} {
			if _, err := inner.Put(ctx, key, bytes.NewReader(bytes.Repeat([]byte("p"), n)), objstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := getAll(t, s, key, 0, -1); !errors.Is(err, seal.ErrCorrupt) {
				t.Errorf("Get of plain %s: error = %v, want ErrCorrupt", key, err)
			}
			if _, err := getAll(t, s, key, 1, 2); !errors.Is(err, seal.ErrCorrupt) {
				t.Errorf("ranged Get of plain %s: error = %v, want ErrCorrupt", key, err)
			}
		}
		if _, err := s.Stat(ctx, "db/tiny"); !errors.Is(err, seal.ErrCorrupt) {
			t.Errorf("Stat of a 100-byte object: error = %v, want ErrCorrupt", err)
		}
		var listErr error
		for _, err := range s.List(ctx, "db/") {
			listErr = err
		}
		if !errors.Is(listErr, seal.ErrCorrupt) {
			t.Errorf("List over a 100-byte object: error = %v, want ErrCorrupt", listErr)
		}
	})
}

func TestStore_ConditionalPut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, inner objstore.Store) {
		ctx := t.Context()
		s := seal.NewStore(inner, mustKey(t))
		first, err := s.Put(ctx, "db/lockish", bytes.NewReader([]byte("one")), objstore.PutOptions{IfNoneMatch: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, "db/lockish", bytes.NewReader([]byte("two")), objstore.PutOptions{IfNoneMatch: true}); !errors.Is(err, objstore.ErrPrecondition) {
			t.Fatalf("second IfNoneMatch put: error = %v, want ErrPrecondition", err)
		}
		second, err := s.Put(ctx, "db/lockish", bytes.NewReader([]byte("three")), objstore.PutOptions{IfMatch: first.ETag})
		if err != nil {
			t.Fatalf("IfMatch with the current ETag: %v", err)
		}
		if _, err := s.Put(ctx, "db/lockish", bytes.NewReader([]byte("four")), objstore.PutOptions{IfMatch: first.ETag}); !errors.Is(err, objstore.ErrPrecondition) {
			t.Fatalf("IfMatch with a stale ETag: error = %v, want ErrPrecondition", err)
		}
		if got, err := getAll(t, s, "db/lockish", 0, -1); err != nil || string(got) != "three" {
			t.Fatalf("Get = %q, %v; want three", got, err)
		}
		if st, err := s.Stat(ctx, "db/lockish"); err != nil || st.ETag != second.ETag {
			t.Fatalf("Stat ETag = %q, %v; want %q", st.ETag, err, second.ETag)
		}
	})
}

func TestStore_CopyDelete(t *testing.T) {
	forEachBackend(t, func(t *testing.T, inner objstore.Store) {
		ctx := t.Context()
		s := seal.NewStore(inner, mustKey(t))
		plain := randomBytes(t, seal.ChunkSize+1)
		if _, err := s.Put(ctx, "files/a", bytes.NewReader(plain), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		// A copy into the trash keeps the name it is bound to; a copy to
		// another name is refused as a renamed object.
		info, err := s.Copy(ctx, "files/a", "trash/files/a@1700000000")
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != int64(len(plain)) {
			t.Fatalf("Copy size = %d, want %d", info.Size, len(plain))
		}
		if got, err := getAll(t, s, "trash/files/a@1700000000", 0, -1); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("Get of the copy: %d bytes, %v", len(got), err)
		}
		if _, err := s.Copy(ctx, "files/a", "files/b"); err != nil {
			t.Fatal(err)
		}
		if _, err := getAll(t, s, "files/b", 0, -1); !errors.Is(err, seal.ErrForged) {
			t.Fatalf("Get of a copy under another name: %v, want ErrForged", err)
		}
		if err := s.Delete(ctx, "files/a", "files/b", "trash/files/a@1700000000"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "files/a", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
			t.Fatalf("Get after Delete: error = %v, want ErrNotFound", err)
		}
		if _, err := s.Get(ctx, "files/b", 5, 5); !errors.Is(err, objstore.ErrNotFound) {
			t.Fatalf("ranged Get after Delete: error = %v, want ErrNotFound", err)
		}
	})
}

// A pending store lists and stats while its key is still loading, sends a
// whole-object Get before the key is there and opens it once it is; a failed
// load is the error of every read and write that needed the key.
func TestPendingStore(t *testing.T) {
	ctx := t.Context()
	inner := storetest.NewCounting(newMemStore())
	k := mustKey(t)
	plain := randomBytes(t, 3*seal.ChunkSize+5)
	if _, err := seal.NewStore(inner, k).Put(ctx, "files/a", bytes.NewReader(plain), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	release := make(chan struct{})
	s := seal.NewPendingStore(inner, func() (*seal.Key, error) { <-release; return k, nil })
	for info, err := range s.List(ctx, "files/") {
		if err != nil || info.Size != int64(len(plain)) {
			t.Fatalf("List while the key loads: %+v, %v", info, err)
		}
	}
	if info, err := s.Stat(ctx, "files/a"); err != nil || info.Size != int64(len(plain)) {
		t.Fatalf("Stat while the key loads: %+v, %v", info, err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := s.Ready(waitCtx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ready before the key loaded = %v, want the context's deadline", err)
	}

	type result struct {
		b   []byte
		err error
	}
	got := make(chan result, 1)
	gets := inner.Counts()["get"]
	go func() { b, err := getAll(t, s, "files/a", 0, -1); got <- result{b, err} }()
	deadline := time.Now().Add(5 * time.Second)
	for inner.Counts()["get"] == gets {
		if time.Now().After(deadline) {
			t.Fatal("Get did not send its request while the key was loading")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case r := <-got:
		t.Fatalf("Get returned before the key: %d bytes, %v", len(r.b), r.err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if r := <-got; r.err != nil || !bytes.Equal(r.b, plain) {
		t.Fatalf("Get after the key: %d bytes, %v; want the %d bytes put", len(r.b), r.err, len(plain))
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatal(err)
	}

	loadErr := errors.New("bucket key: wrong passphrase")
	bad := seal.NewPendingStore(inner, func() (*seal.Key, error) { return nil, loadErr })
	if _, err := getAll(t, bad, "files/a", 0, -1); !errors.Is(err, loadErr) {
		t.Fatalf("whole Get with a failed key = %v, want %v", err, loadErr)
	}
	if _, err := getAll(t, bad, "files/a", 1, 10); !errors.Is(err, loadErr) {
		t.Fatalf("ranged Get with a failed key = %v, want %v", err, loadErr)
	}
	if _, err := bad.Put(ctx, "files/b", bytes.NewReader(plain), objstore.PutOptions{}); !errors.Is(err, loadErr) {
		t.Fatalf("Put with a failed key = %v, want %v", err, loadErr)
	}
	if _, err := inner.Stat(ctx, "files/b"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("a Put with a failed key stored something: %v", err)
	}
	if err := bad.Ready(ctx); !errors.Is(err, loadErr) {
		t.Fatalf("Ready = %v, want %v", err, loadErr)
	}
}
