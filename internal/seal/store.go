package seal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"
	"time"

	"github.com/vwstream/vwstream/internal/objstore"
)

// sealedContentType is stored with every sealed object instead of the caller's,
// which would tell the bucket holder what kind of file is inside.
const sealedContentType = "application/octet-stream"

// Store seals every object put through it and opens every object read through it.
// Sizes it reports are plaintext sizes; ETags are those of the stored (sealed)
// objects, so conditional puts work through it unchanged. It is meant for the
// db/ and files/ trees only: keys/, snapshots/ and the lease are written to the
// inner store directly.
type Store struct {
	inner objstore.Store

	keyReady chan struct{} // closed once key or keyErr is set
	key      *Key
	keyErr   error

	authMu     sync.Mutex
	strict     bool      // the bucket is upgraded: unauthenticated objects are refused
	legacySeen time.Time // when the bucket was last found not upgraded yet
}

var _ objstore.Store = (*Store)(nil)

// NewStore returns a Store that seals objects of inner with key.
func NewStore(inner objstore.Store, key *Key) *Store {
	s := &Store{inner: inner, key: key, keyReady: make(chan struct{})}
	close(s.keyReady)
	return s
}

// NewPendingStore returns a Store whose key load runs in the background (an
// unwrap costs a second of scrypt). Listing, Stat, Copy and Delete work at
// once; sealing and opening contents wait for the key and fail with load's
// error if it fails. A whole-object Get sends its request first and waits for
// the key only to decrypt, so a restore's listing, planning and first requests
// overlap the unwrap.
func NewPendingStore(inner objstore.Store, load func() (*Key, error)) *Store {
	s := &Store{inner: inner, keyReady: make(chan struct{})}
	go func() {
		defer close(s.keyReady)
		s.key, s.keyErr = load()
	}()
	return s
}

// Ready waits for the key and returns the error of its load, if any.
func (s *Store) Ready(ctx context.Context) error {
	_, err := s.waitKey(ctx)
	return err
}

func (s *Store) waitKey(ctx context.Context) (*Key, error) {
	select {
	case <-s.keyReady:
		return s.key, s.keyErr
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Put seals r and stores it under key. opts pass through, except ContentType.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	k, err := s.waitKey(ctx)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	cr := &countingReader{r: r}
	enc, err := k.EncryptReader(cr, key)
	if err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("seal %s: %w", key, err)
	}
	opts.ContentType = sealedContentType
	info, err := s.inner.Put(ctx, key, enc, opts)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	info.Size = cr.n
	return info, nil
}

// Get opens key and returns plaintext from offset; length < 0 reads to the end.
// A whole-object read is one streaming request. A ranged read costs four
// requests whatever its length (Stat, the header, the final chunk that
// authenticates the size, and one stream over the chunks the range covers), or
// two for objects up to smallObjectSize. Read errors matching ErrCorrupt mean the
// object was damaged; they are never replaced by wrong bytes.
func (s *Store) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, fmt.Errorf("get %s: negative offset %d", key, offset)
	}
	if offset == 0 && length < 0 {
		rc, err := s.inner.Get(ctx, key, 0, -1)
		if err != nil {
			return nil, err
		}
		k, legacy, err := s.openKey(ctx)
		if err != nil {
			rc.Close()
			return nil, err
		}
		r, err := k.decrypt(rc, key, legacy)
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("open sealed %s: %w", key, err)
		}
		return &readCloser{Reader: &namedReader{r: r, key: key}, Closer: rc}, nil
	}

	info, err := s.inner.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	k, legacy, err := s.openKey(ctx)
	if err != nil {
		return nil, err
	}
	plain, err := PlaintextSize(info.Size)
	if err != nil {
		return nil, fmt.Errorf("open sealed %s: %w", key, err)
	}
	// Like the inner stores, an offset past the end reads as empty; the object is
	// still authenticated, so a truncated one is not mistaken for a short one.
	offset = min(offset, plain)
	end := plain
	if length >= 0 && length < plain-offset {
		end = offset + length
	}

	spanStart, spanEnd := spanOf(offset, end, info.Size)
	ra := newRangeReaderAt(ctx, s.inner, key, info.Size, spanStart, spanEnd)
	if err := ra.prefetch(); err != nil {
		return nil, err
	}
	pra, _, err := k.decryptReaderAt(ra, info.Size, key, legacy)
	if err != nil {
		ra.Close()
		return nil, fmt.Errorf("open sealed %s: %w", key, err)
	}
	sr := io.NewSectionReader(pra, offset, end-offset)
	return &readCloser{Reader: &namedReader{r: sr, key: key}, Closer: ra}, nil
}

// legacyRecheck is how long a Store trusts that the bucket is not upgraded yet
// before it looks for the marker again (a secondary runs for months).
const legacyRecheck = time.Minute

// openKey waits for the key and says whether objects sealed before
// authentication are still accepted: only while the bucket is not upgraded.
func (s *Store) openKey(ctx context.Context) (*Key, bool, error) {
	k, err := s.waitKey(ctx)
	if err != nil {
		return nil, false, err
	}
	s.authMu.Lock()
	defer s.authMu.Unlock()
	if s.strict {
		return k, false, nil
	}
	if !s.legacySeen.IsZero() && time.Since(s.legacySeen) < legacyRecheck {
		return k, true, nil
	}
	legacy, err := acceptsLegacy(ctx, s.inner, k)
	if err != nil {
		return nil, false, err
	}
	if legacy {
		s.legacySeen = time.Now()
	} else {
		s.strict = true
	}
	return k, legacy, nil
}

// spanOf returns the stored byte range of the chunks holding plaintext [off, end).
func spanOf(off, end, size int64) (start, stop int64) {
	const encChunk = ChunkSize + TagSize
	first := off / ChunkSize
	last := first
	if end > off {
		last = (end - 1) / ChunkSize
	}
	start = PayloadOffset + first*encChunk
	stop = min(size, PayloadOffset+(last+1)*encChunk)
	return start, stop
}

// Stat describes key with its plaintext size.
func (s *Store) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	info, err := s.inner.Stat(ctx, key)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	return plainInfo(info)
}

// List yields the objects under prefix with their plaintext sizes. An object
// whose stored size no sealed object can have ends the listing with ErrCorrupt.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[objstore.ObjectInfo, error] {
	return func(yield func(objstore.ObjectInfo, error) bool) {
		for info, err := range s.inner.List(ctx, prefix) {
			if err != nil {
				yield(objstore.ObjectInfo{}, err)
				return
			}
			info, err = plainInfo(info)
			if !yield(info, err) || err != nil {
				return
			}
		}
	}
}

// Delete removes keys from the inner store.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	return s.inner.Delete(ctx, keys...)
}

// Copy copies the sealed object as it is. The object stays bound to the name
// it was sealed under, so the copy opens only where AuthName maps dst back to
// src (files/<path> into trash/files/<path>@<unix time>); elsewhere it reads
// as a renamed object (ErrForged).
func (s *Store) Copy(ctx context.Context, src, dst string) (objstore.ObjectInfo, error) {
	info, err := s.inner.Copy(ctx, src, dst)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	return plainInfo(info)
}

// String names the inner store and says that its objects are sealed.
func (s *Store) String() string { return s.inner.String() + " (sealed)" }

func plainInfo(info objstore.ObjectInfo) (objstore.ObjectInfo, error) {
	n, err := PlaintextSize(info.Size)
	if err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("sealed object %s: %w", info.Key, err)
	}
	info.Size = n
	return info, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	return n, err
}

type readCloser struct {
	io.Reader
	io.Closer
}

// namedReader puts the object's key into read errors, which would otherwise
// say only that some chunk failed.
type namedReader struct {
	r   io.Reader
	key string
}

func (r *namedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("read sealed %s: %w", r.key, err)
	}
	return n, err
}
