// Package objstore is the only place vwstream talks to object storage: an S3
// bucket (aws-sdk-go-v2) or a local folder (the embedded default). Everything
// above it sees one small interface and a few sentinel errors.
package objstore

import (
	"context"
	"errors"
	"io"
	"iter"
	"time"
)

// Store is a flat namespace of immutable objects addressed by slash-separated keys.
// Keys are relative to the store's root (the bucket prefix or folder); they never
// start with a slash and never contain "." or ".." segments.
type Store interface {
	// Put streams r, of unknown length, into key. The upload is complete and its
	// checksum verified against what the store reports before Put returns; on any
	// error nothing is visible under key that was not there before.
	Put(ctx context.Context, key string, r io.Reader, opts PutOptions) (ObjectInfo, error)

	// Get opens key for reading from offset. length < 0 reads to the end.
	// A missing key returns an error matching ErrNotFound.
	Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)

	// Stat describes key. A missing key returns an error matching ErrNotFound.
	Stat(ctx context.Context, key string) (ObjectInfo, error)

	// List yields every object whose key starts with prefix, in lexical key order.
	// An error ends the sequence; a failed listing is never reported as empty.
	List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error]

	// Delete removes keys. Deleting a missing key is not an error.
	Delete(ctx context.Context, keys ...string) error

	// Copy duplicates src to dst inside the store (server-side where possible).
	Copy(ctx context.Context, src, dst string) (ObjectInfo, error)

	// String names the store for humans ("s3://bucket/prefix (https://host)",
	// "file:///backup"); it never contains a credential.
	String() string
}

// PutOptions make a Put conditional. The zero value is an unconditional put.
type PutOptions struct {
	// IfNoneMatch makes the put fail with ErrPrecondition when key already exists.
	IfNoneMatch bool
	// IfMatch makes the put fail with ErrPrecondition unless key exists with this ETag.
	IfMatch string
	// ContentType is stored with the object when the store supports it.
	ContentType string
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key     string    // relative to the store root
	Size    int64     // bytes
	ModTime time.Time // last modification as reported by the store
	ETag    string    // opaque version tag usable with PutOptions.IfMatch
}

var (
	// ErrNotFound reports a missing object.
	ErrNotFound = errors.New("object not found")
	// ErrPrecondition reports a failed conditional put.
	ErrPrecondition = errors.New("precondition failed")
	// ErrChecksum reports that stored bytes differ from the bytes sent.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrPermanent marks errors that retrying cannot fix (access denied, no such
	// bucket, bad credentials); it is matched with errors.Is.
	ErrPermanent = errors.New("permanent storage error")
)
