package snapshot_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/snapshot"
)

// flippingStore serves every archive read back with one byte changed: a store
// that damaged what it kept.
type flippingStore struct{ objstore.Store }

func (f flippingStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	rc, err := f.Store.Get(ctx, key, off, n)
	if err != nil || !strings.Contains(key, ".tar.gz") {
		return rc, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	if len(b) > 100 {
		b[len(b)/2] ^= 0x40
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// TestRun_UnverifiedArchiveIsRemoved: an archive that fails its read-back is
// deleted, so neither "latest" nor retention can take it for a snapshot.
func TestRun_UnverifiedArchiveIsRemoved(t *testing.T) {
	dir := newVault(t)
	store := flippingStore{newLocal(t)}
	opts := snapshot.Options{Source: snapshot.SourceFromFolder(dir)}
	res, err := snapshot.Run(t.Context(), opts, []snapshot.Destination{{Name: "target", Store: store, Verify: true}})
	if err == nil || !strings.Contains(err.Error(), "verify") {
		t.Fatalf("Run = %v, want a verification failure", err)
	}
	for oi, err := range store.List(t.Context(), layout.Snapshots) {
		if err != nil {
			t.Fatal(err)
		}
		t.Errorf("left in the store after a failed verification: %s (run %s)", oi.Key, res.Name)
	}
}

// The same for a passphrase-encrypted archive: a byte changed in the stored
// OpenPGP data fails the read-back (the archive's SHA-256, the MDC and the
// entries' hashes all cover it), and the archive is removed.
func TestRun_UnverifiedGPGArchiveIsRemoved(t *testing.T) {
	dir := newVault(t)
	store := flippingStore{newLocal(t)}
	opts := snapshot.Options{Source: snapshot.SourceFromFolder(dir),
		Encrypter: encrypter(t, seal.SnapshotOptions{Mode: seal.SnapshotGPGPassphrase, GPGPassphrase: testPassphrase, GPGS2KCount: 65536})}
	res, err := snapshot.Run(t.Context(), opts, []snapshot.Destination{{Name: "target", Store: store, Verify: true}})
	if err == nil || !strings.Contains(err.Error(), "verify") {
		t.Fatalf("Run = %v, want a verification failure", err)
	}
	if !strings.HasSuffix(res.Name, ".gpg") {
		t.Fatalf("name %q, want an encrypted archive", res.Name)
	}
	for oi, err := range store.List(t.Context(), layout.Snapshots) {
		if err != nil {
			t.Fatal(err)
		}
		t.Errorf("left in the store after a failed verification: %s (run %s)", oi.Key, res.Name)
	}
}

// `vwstream backup` on a terminal sets Progress: the run must still hash and
// verify what it uploads, and report the bytes as they go up.
func TestRun_WithProgress(t *testing.T) {
	dir := newVault(t)
	store := newLocal(t)
	var last int64
	calls := 0
	opts := snapshot.Options{Source: snapshot.SourceFromFolder(dir), Progress: func(n int64) { last, calls = n, calls+1 }}
	res, err := snapshot.Run(t.Context(), opts, []snapshot.Destination{{Name: "target", Store: store, Verify: true}})
	if err != nil {
		t.Fatalf("Run with progress: %v", err)
	}
	if calls == 0 || last != res.Size {
		t.Fatalf("progress: %d calls, last %d bytes; the archive has %d", calls, last, res.Size)
	}
}
