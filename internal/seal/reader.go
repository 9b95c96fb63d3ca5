package seal

import (
	"errors"
	"fmt"
	"io"
)

// sourceError marks an error that came from the storage under a sealed object
// (network, missing key, cancelled context) as it travels through age, so that
// it is returned as is and not mistaken for a damaged object.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// markSource wraps every error but io.EOF, which age must see unchanged to find
// the end of the object.
func markSource(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return &sourceError{err: err}
}

// classify turns an error out of age into either the storage error that caused
// it or ErrCorrupt.
func classify(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	var serr *sourceError
	if errors.As(err, &serr) {
		return serr.err
	}
	if errors.Is(err, ErrCorrupt) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrCorrupt, err)
}

type sourceReader struct{ r io.Reader }

func (r *sourceReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	return n, markSource(err)
}

type sourceReaderAt struct{ r io.ReaderAt }

func (r *sourceReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.r.ReadAt(p, off)
	return n, markSource(err)
}

// plainReader is the plaintext of a streamed sealed object.
type plainReader struct{ r io.Reader }

func (r *plainReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	return n, classify(err)
}

// plainReaderAt is the plaintext of a sealed object opened for random access.
type plainReaderAt struct {
	r    io.ReaderAt
	size int64
}

func (r *plainReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > r.size {
		return 0, fmt.Errorf("read sealed object at %d: offset out of range [0:%d]", off, r.size)
	}
	n, err := r.r.ReadAt(p, off)
	return n, classify(err)
}
