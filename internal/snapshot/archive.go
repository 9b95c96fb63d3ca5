package snapshot

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Compression is how a snapshot archive is compressed (BACKUP_COMPRESSION).
type Compression string

// Compressions, named by the suffix each adds after .tar.
const (
	CompressGzip Compression = "gz"
	CompressZstd Compression = "zst"
	CompressNone Compression = "none"
)

// compressExt returns the archive suffix of a compression.
func compressExt(kind Compression) (string, error) {
	switch kind {
	case CompressGzip, "":
		return ".tar.gz", nil
	case CompressZstd:
		return ".tar.zst", nil
	case CompressNone:
		return ".tar", nil
	}
	return "", fmt.Errorf("unknown compression %q", kind)
}

// compressor wraps w. pgzip compresses blocks on every core; its memory is
// bounded by block size times blocks in flight (1 MiB x 4 here).
func compressor(w io.Writer, kind Compression) (io.WriteCloser, error) {
	switch kind {
	case CompressGzip, "":
		zw, err := pgzip.NewWriterLevel(w, pgzip.DefaultCompression)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if err := zw.SetConcurrency(1<<20, 4); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zw, nil
	case CompressZstd:
		zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(2), zstd.WithWindowSize(4<<20))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zw, nil
	case CompressNone:
		return nopWriteCloser{w}, nil
	}
	return nil, fmt.Errorf("unknown compression %q", kind)
}

// decompressor reads an archive whose compression suffix is ext (".gz", ".zst", "").
func decompressor(r io.Reader, ext string) (io.ReadCloser, error) {
	switch ext {
	case ".gz":
		zr, err := pgzip.NewReaderN(r, 1<<20, 4)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrDamaged, err)
		}
		return zr, nil
	case ".zst":
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	case "":
		return io.NopCloser(r), nil
	}
	return nil, fmt.Errorf("unknown compression suffix %q", ext)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// hashReader counts and hashes what is read through it.
type hashReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func newHashReader(r io.Reader) *hashReader { return &hashReader{r: r, h: sha256.New()} }

func (hr *hashReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	hr.n += int64(n)
	return n, err
}

func (hr *hashReader) sum() string { return hex.EncodeToString(hr.h.Sum(nil)) }

// writeArchive writes the captured files and then the manifest as a tar stream.
// A large file that shrinks while it is archived is padded to the size in its
// header and recorded as changed (small ones are read whole first); attachment rows without a complete file
// make the manifest degraded.
func writeArchive(ctx context.Context, w io.Writer, c *capture, m *Manifest) error {
	tw := tar.NewWriter(w)
	archived := map[string]int64{}
	if c.server != nil {
		if err := writeDump(ctx, tw, c, m); err != nil {
			return err
		}
	}
	if c.stream != nil {
		fe, err := c.stream.writeTo(ctx, tw, DBEntry)
		if err != nil {
			return fmt.Errorf("archive %s: %w", DBEntry, err)
		}
		m.Files = append(m.Files, fe)
		archived[DBEntry] = fe.Size
		if !c.stream.keep {
			// Let checkpoints pass the state again while the files are
			// archived; a failure to end it is the run's cleanup error.
			_ = c.stream.close()
		}
	}
	for _, e := range c.files {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := os.Open(e.path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // deleted since it was listed: not in the archive
			}
			return fmt.Errorf("archive %s: %w", e.name, err)
		}
		fe, changed, err := writeFile(tw, f, e.name)
		f.Close()
		if err != nil {
			return fmt.Errorf("archive %s: %w", e.name, err)
		}
		if changed {
			m.Changed = append(m.Changed, e.name)
		}
		m.Files = append(m.Files, fe)
		archived[e.name] = fe.Size
	}
	for _, row := range c.rows {
		got, ok := archived[row.path]
		if !ok {
			got = -1
		}
		if got != row.size {
			m.MissingAttachments = append(m.MissingAttachments, Attachment{Path: row.path, WantSize: row.size, GotSize: got})
		}
	}
	m.Degraded = len(m.MissingAttachments) > 0
	b, err := m.marshal()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: ManifestName, Mode: 0o600, Size: int64(len(b)), ModTime: m.CapturedAt, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archive manifest: %w", err)
	}
	if _, err := tw.Write(b); err != nil {
		return fmt.Errorf("archive manifest: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

// smallFile is the size up to which a file is read whole before its header is
// written, so a file rewritten meanwhile (config.json, rsa_key.pem, most
// attachments) is archived as one consistent version, never zero-padded.
const smallFile = 1 << 20

// writeFile archives the open file f as name, hashing what it writes.
func writeFile(tw *tar.Writer, f *os.File, name string) (File, bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return File{}, false, err
	}
	hdr := &tar.Header{Name: name, Mode: int64(fi.Mode().Perm()), Size: fi.Size(),
		ModTime: fi.ModTime().Truncate(time.Second), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if fi.Size() <= smallFile {
		data, err := io.ReadAll(io.LimitReader(f, smallFile))
		if err != nil {
			return File{}, false, err
		}
		hdr.Size = int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			return File{}, false, err
		}
		if _, err := tw.Write(data); err != nil {
			return File{}, false, err
		}
		sum := sha256.Sum256(data)
		return File{Path: name, Size: hdr.Size, SHA256: hex.EncodeToString(sum[:])}, false, nil
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return File{}, false, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tw, h), io.LimitReader(f, fi.Size()))
	if err != nil {
		return File{}, false, err
	}
	changed := false
	if n < fi.Size() {
		// The file shrank under us: the header is written, so pad with zeros.
		changed = true
		pad := io.LimitReader(zeroReader{}, fi.Size()-n)
		if _, err := io.Copy(io.MultiWriter(tw, h), pad); err != nil {
			return File{}, false, err
		}
	}
	return File{Path: name, Size: fi.Size(), SHA256: hex.EncodeToString(h.Sum(nil))}, changed, nil
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// readArchive walks a decompressed tar stream, hashing every entry, and checks
// the entries against the manifest at its end. each, when set, gets every
// regular entry's header and content before it is hashed. It returns the
// manifest; any mismatch matches ErrDamaged.
func readArchive(r io.Reader, each func(*tar.Header, io.Reader) error) (*Manifest, error) {
	tr := tar.NewReader(r)
	seen := map[string]File{}
	var manifest []byte
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, damaged(err)
		}
		if hdr.Name == ManifestName {
			b, err := io.ReadAll(io.LimitReader(tr, 64<<20))
			if err != nil {
				return nil, damaged(err)
			}
			manifest = b
			continue
		}
		if manifest != nil {
			return nil, fmt.Errorf("%w: entry %q after the manifest", ErrDamaged, hdr.Name)
		}
		h := sha256.New()
		var src io.Reader = io.TeeReader(tr, h)
		if each != nil {
			if err := each(hdr, src); err != nil {
				return nil, err
			}
		}
		// Drain what each left unread so the hash covers the whole entry.
		if _, err := io.Copy(io.Discard, src); err != nil {
			return nil, damaged(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			seen[hdr.Name] = File{Path: hdr.Name, Size: hdr.Size, SHA256: hex.EncodeToString(h.Sum(nil))}
		}
	}
	if manifest == nil {
		return nil, fmt.Errorf("%w: no %s (truncated archive?)", ErrDamaged, ManifestName)
	}
	m, err := parseManifest(manifest)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	if err := checkEntries(m, seen); err != nil {
		return nil, err
	}
	return m, nil
}

// checkEntries compares the hashed entries with the manifest, both ways.
func checkEntries(m *Manifest, seen map[string]File) error {
	want := m.fileMap()
	for name, f := range want {
		got, ok := seen[name]
		if !ok {
			return fmt.Errorf("%w: %s is in the manifest but not in the archive", ErrDamaged, name)
		}
		if got.Size != f.Size || got.SHA256 != f.SHA256 {
			return fmt.Errorf("%w: %s differs from the manifest", ErrDamaged, name)
		}
	}
	for name := range seen {
		if _, ok := want[name]; !ok {
			return fmt.Errorf("%w: %s is not in the manifest", ErrDamaged, name)
		}
	}
	return nil
}

// ErrDamaged reports an archive that is truncated, tampered with, or does not
// match its manifest.
var ErrDamaged = errors.New("snapshot archive is damaged")

func damaged(err error) error {
	if errors.Is(err, ErrDamaged) {
		return err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, tar.ErrHeader) {
		return fmt.Errorf("%w: truncated or not a tar archive", ErrDamaged)
	}
	return err
}
