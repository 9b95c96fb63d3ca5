package seal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/vwstream/vwstream/internal/objstore"
)

const (
	// smallObjectSize is the stored size up to which a ranged read fetches the
	// whole object in one request: cheaper than three requests for its parts.
	smallObjectSize = 256 * 1024
	// headSize is how much of the start of an object a ranged read fetches first:
	// age reads the header through a 4 KiB buffer.
	headSize = 4096
)

// rangeReaderAt is an io.ReaderAt over one stored object, built from ranged
// Gets of the inner store. DecryptReaderAt reads the header, then the final
// chunk, then chunk after chunk of the span the caller asked for; the first two
// are served by one small request each and the span by a single streaming
// request, so a ranged read does not cost one request per 64 KiB chunk.
type rangeReaderAt struct {
	ctx   context.Context
	store objstore.Store
	key   string
	size  int64

	mu      sync.Mutex
	buf     []byte // bytes [bufOff, bufOff+len(buf)) of the object
	bufOff  int64
	spanEnd int64         // end of the span streamed by rc
	pos     int64         // next offset rc will return
	rc      io.ReadCloser // open stream over [pos, spanEnd), nil until needed
}

func newRangeReaderAt(ctx context.Context, store objstore.Store, key string, size int64, spanStart, spanEnd int64) *rangeReaderAt {
	return &rangeReaderAt{ctx: ctx, store: store, key: key, size: size, pos: spanStart, spanEnd: spanEnd}
}

// prefetch loads the start of the object, or all of it when it is small.
func (r *rangeReaderAt) prefetch() error {
	n := min(r.size, headSize)
	if r.size <= smallObjectSize {
		n = r.size
	}
	buf := make([]byte, n)
	if err := r.fetch(buf, 0); err == io.EOF {
		return fmt.Errorf("open sealed %s: %w: shorter than its listed size", r.key, ErrCorrupt)
	} else if err != nil {
		return err
	}
	r.buf, r.bufOff = buf, 0
	return nil
}

// ReadAt implements io.ReaderAt. An object shorter than its Stat said (it was
// replaced or truncated meanwhile) reads as io.EOF, which DecryptReaderAt
// reports as a damaged object.
func (r *rangeReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", r.key, off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	var short bool
	if rest := r.size - off; int64(len(p)) > rest {
		p, short = p[:rest], true
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	switch end := off + int64(len(p)); {
	case off >= r.bufOff && end <= r.bufOff+int64(len(r.buf)):
		copy(p, r.buf[off-r.bufOff:])
	case off == r.pos && end <= r.spanEnd:
		err = r.stream(p)
	default:
		err = r.fetch(p, off)
	}
	if err != nil {
		return 0, err
	}
	if short {
		return len(p), io.EOF
	}
	return len(p), nil
}

// stream reads p from the open span stream, opening it on first use.
func (r *rangeReaderAt) stream(p []byte) error {
	if r.rc == nil {
		rc, err := r.store.Get(r.ctx, r.key, r.pos, r.spanEnd-r.pos)
		if err != nil {
			return err
		}
		r.rc = rc
	}
	n, err := io.ReadFull(r.rc, p)
	r.pos += int64(n)
	if err != nil {
		r.rc.Close()
		r.rc = nil
		return shortIsEOF(err)
	}
	return nil
}

// fetch reads p at off with one ranged Get.
func (r *rangeReaderAt) fetch(p []byte, off int64) error {
	rc, err := r.store.Get(r.ctx, r.key, off, int64(len(p)))
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.ReadFull(rc, p)
	return shortIsEOF(err)
}

// shortIsEOF reports an object that ends early as io.EOF, the signal for a
// truncated object, rather than as a storage failure.
func shortIsEOF(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return io.EOF
	}
	return err
}

// Close ends the span stream, if open.
func (r *rangeReaderAt) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rc == nil {
		return nil
	}
	err := r.rc.Close()
	r.rc = nil
	return err
}
