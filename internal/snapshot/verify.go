package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/seal"
)

// Verification levels reported in DestResult.Verified.
const (
	VerifiedArchive  = "archive"  // downloaded, decrypted, every entry checked against the manifest
	VerifiedChecksum = "checksum" // downloaded, SHA-256 of the stored bytes equals what was sent
	VerifiedSize     = "size"     // stored size (and ETag where the store has one) equal what was sent
)

// verifyObject checks the stored archive at key against what was uploaded.
// Without full it compares Stat's size and ETag. With full it downloads the
// object and compares its SHA-256; with keys it also decrypts, decompresses
// and checks every entry's hash against the manifest m, streaming.
func verifyObject(ctx context.Context, store objstore.Store, key string, up uploaded, m *Manifest, keys *seal.SnapshotKeys, full bool) (string, error) {
	st, err := store.Stat(ctx, key)
	if err != nil {
		return "", fmt.Errorf("stat: %w", err)
	}
	if st.Size != up.size {
		return "", fmt.Errorf("%w: stored size %d, sent %d", objstore.ErrChecksum, st.Size, up.size)
	}
	if up.etag != "" && st.ETag != "" && st.ETag != up.etag {
		return "", fmt.Errorf("%w: stored ETag changed since the upload", objstore.ErrChecksum)
	}
	if !full {
		return VerifiedSize, nil
	}
	rc, err := store.Get(ctx, key, 0, -1)
	if err != nil {
		return "", fmt.Errorf("read back: %w", err)
	}
	// The download and its SHA-256 run in a goroutine of their own, a buffer
	// ahead of the decryption, decompression and entry hashes that read it.
	h := sha256.New()
	src, stop := hashAhead(rc, h)
	defer stop()
	level := VerifiedChecksum
	if keys != nil {
		comp, enc := splitExt(key)
		got, err := readSnapshot(src, comp, enc, *keys, nil)
		if err != nil {
			return "", fmt.Errorf("read back: %w", err)
		}
		if err := sameFiles(got, m); err != nil {
			return "", err
		}
		level = VerifiedArchive
	}
	// Drain what follows the tar end (padding, the encryption's last packet).
	if _, err := io.Copy(io.Discard, src); err != nil {
		return "", fmt.Errorf("read back: %w", err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != up.sha256 {
		return "", fmt.Errorf("%w: stored archive's SHA-256 differs from the one sent", objstore.ErrChecksum)
	}
	return level, nil
}

// readSnapshot decrypts, decompresses and walks an archive stream.
func readSnapshot(r io.Reader, comp, enc string, keys seal.SnapshotKeys, each eachFunc) (*Manifest, error) {
	plain, err := seal.SnapshotDecrypt(r, enc, keys)
	if err != nil {
		return nil, err
	}
	zr, err := decompressor(plain, comp)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	m, err := readArchive(zr, each)
	if err == nil {
		// Read to the end so the decryption authenticates the last chunk.
		_, err = io.Copy(io.Discard, zr)
		err = damaged(err)
	}
	if errors.Is(err, seal.ErrCorrupt) && !errors.Is(err, ErrDamaged) {
		err = fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// sameFiles checks that the manifest read back lists the files written.
func sameFiles(got, want *Manifest) error {
	if len(got.Files) != len(want.Files) {
		return fmt.Errorf("%w: %d files read back, %d written", ErrDamaged, len(got.Files), len(want.Files))
	}
	for i := range got.Files {
		if got.Files[i] != want.Files[i] {
			return fmt.Errorf("%w: %s read back differs from what was written", ErrDamaged, got.Files[i].Path)
		}
	}
	return nil
}

// replicate copies the verified archive from src to an extra destination and
// verifies the copy: its size, and its SHA-256 when d.Verify.
func replicate(ctx context.Context, src objstore.Store, d Destination, key string, up uploaded) (string, error) {
	rc, err := src.Get(ctx, key, 0, -1)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", key, err)
	}
	defer rc.Close()
	info, err := d.Store.Put(ctx, key, rc, objstore.PutOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return "", fmt.Errorf("upload: %w", err)
	}
	copied := uploaded{size: up.size, sha256: up.sha256, etag: info.ETag}
	level, err := verifyObject(ctx, d.Store, key, copied, nil, nil, d.Verify)
	if err != nil {
		_ = d.Store.Delete(context.WithoutCancel(ctx), key) // a bad copy is no snapshot
		return "", fmt.Errorf("verify: %w", err)
	}
	return level, nil
}

// isNotFound matches a missing object.
func isNotFound(err error) bool { return errors.Is(err, objstore.ErrNotFound) }

// hashAhead reads rc into h in a goroutine and hands the bytes on through the
// returned reader, which ends (io.EOF) only once h has seen all of rc. stop
// closes rc and waits for the goroutine.
func hashAhead(rc io.ReadCloser, h hash.Hash) (io.Reader, func()) {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := io.CopyBuffer(pw, io.TeeReader(rc, h), make([]byte, 256<<10))
		pw.CloseWithError(err) // nil: the reader gets io.EOF
	}()
	return pr, func() {
		pr.Close() // a Write waiting on the reader fails
		rc.Close() // a Read waiting on the source fails
		<-done
	}
}
