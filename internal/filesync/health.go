package filesync

import (
	"context"
	"fmt"
	"io"
	"iter"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vwstream/vwstream/internal/objstore"
)

// Operations whose errors Status reports. Each is set by the operation when it
// fails and cleared by the same operation when it next succeeds, so the status
// says what is wrong now, not what was wrong at the last reconcile.
const (
	opManifest  = "manifest"
	opReconcile = "reconcile"
	opUpload    = "upload " // + key
)

// setErrLocked records the outcome of op: err, or success (nil) which clears
// op's error. LastError keeps the latest failure for the record.
func (s *Syncer) setErrLocked(op string, err error) {
	if err == nil {
		delete(s.errs, op)
		return
	}
	s.errs[op] = err.Error()
	s.status.LastError = err.Error()
	s.status.LastErrorAt = time.Now()
}

// caughtUpLocked moves LastSync to now when nothing is pending and no
// operation is failing: everything known is in the store.
func (s *Syncer) caughtUpLocked(now time.Time) {
	if len(s.errs) == 0 && len(s.dirty) == 0 && len(s.inflight) == 0 {
		s.status.LastSync = now
	}
}

// errorLocked is Status.Error: the refused deletions, the failing operations
// (uploads summarised) and a store request gone unanswered past StallTimeout.
func (s *Syncer) errorLocked(now time.Time) string {
	var msgs, uploads []string
	if s.status.Alarm {
		msgs = append(msgs, s.status.AlarmReason)
	}
	for _, op := range slices.Sorted(maps.Keys(s.errs)) {
		if strings.HasPrefix(op, opUpload) {
			uploads = append(uploads, s.errs[op])
		} else {
			msgs = append(msgs, s.errs[op])
		}
	}
	switch len(uploads) {
	case 0:
	case 1:
		msgs = append(msgs, uploads[0])
	default:
		msgs = append(msgs, fmt.Sprintf("%d files failing to upload, e.g. %s", len(uploads), uploads[0]))
	}
	if d := s.requests.stalled(now, s.opts.StallTimeout); d > 0 {
		msgs = append(msgs, fmt.Sprintf("store request not answered after %s: the store is not answering", d.Round(time.Second)))
	}
	return strings.Join(msgs, "; ")
}

// requestWatch times the store requests in flight: a store that accepts
// requests and never answers (a frozen server, a partition dropping packets)
// fails no request until the client's own timeouts, minutes later.
type requestWatch struct {
	mu       sync.Mutex
	next     uint64
	inflight map[uint64]time.Time // request -> when it started
	progress atomic.Int64         // unix nanos of the last answer or byte of a body read
}

// begin registers a request; the returned func ends it.
func (w *requestWatch) begin() func() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inflight == nil {
		w.inflight = map[uint64]time.Time{}
	}
	w.next++
	id := w.next
	w.inflight[id] = time.Now()
	return func() {
		w.touch()
		w.mu.Lock()
		delete(w.inflight, id)
		w.mu.Unlock()
	}
}

func (w *requestWatch) touch() { w.progress.Store(time.Now().UnixNano()) }

// stalled is how long the oldest request in flight has been waiting, once
// neither it nor any other request has made progress for timeout; zero
// otherwise. A large upload that keeps reading its body is not stalled.
func (w *requestWatch) stalled(now time.Time, timeout time.Duration) time.Duration {
	w.mu.Lock()
	var oldest time.Time
	for _, t := range w.inflight {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	w.mu.Unlock()
	if oldest.IsZero() {
		return 0
	}
	last := oldest
	if p := time.Unix(0, w.progress.Load()); p.After(last) {
		last = p
	}
	if now.Sub(last) < timeout {
		return 0
	}
	return now.Sub(oldest)
}

// watchedStore is the store as the syncer uses it, every request timed by w.
type watchedStore struct {
	objstore.Store
	w *requestWatch
}

func (st watchedStore) Put(ctx context.Context, key string, r io.Reader, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	defer st.w.begin()()
	return st.Store.Put(ctx, key, progressReader{r: r, w: st.w}, opts)
}

func (st watchedStore) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	defer st.w.begin()()
	return st.Store.Get(ctx, key, offset, length)
}

func (st watchedStore) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	defer st.w.begin()()
	return st.Store.Stat(ctx, key)
}

func (st watchedStore) List(ctx context.Context, prefix string) iter.Seq2[objstore.ObjectInfo, error] {
	return func(yield func(objstore.ObjectInfo, error) bool) {
		end := st.w.begin()
		defer end()
		for info, err := range st.Store.List(ctx, prefix) {
			st.w.touch()
			if !yield(info, err) {
				return
			}
		}
	}
}

func (st watchedStore) Delete(ctx context.Context, keys ...string) error {
	defer st.w.begin()()
	return st.Store.Delete(ctx, keys...)
}

func (st watchedStore) Copy(ctx context.Context, src, dst string) (objstore.ObjectInfo, error) {
	defer st.w.begin()()
	return st.Store.Copy(ctx, src, dst)
}

// progressReader marks progress on every read of an upload's body.
type progressReader struct {
	r io.Reader
	w *requestWatch
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.w.touch()
	}
	return n, err
}
