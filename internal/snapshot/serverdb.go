package snapshot

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vwstream/vwstream/internal/serverdb"
)

// DumpFolder holds a server database's dump inside an archive.
const DumpFolder = "database"

// DumpPartSize is the size of the entries a server database's dump is split
// into. A tar entry announces its size first and a dump's size is known only
// at its end, so the dump streams through one in-memory part at a time: the
// archive never needs a temporary copy of the dump on disk.
const DumpPartSize = 16 << 20

// dumpBase is the dump's name in the archive, before the part number.
func dumpBase(kind string) string {
	if kind == serverdb.PostgreSQL {
		return DumpFolder + "/postgresql.dump"
	}
	return DumpFolder + "/mysql.sql"
}

// captureServer fixes the server database's snapshot point, then lists the
// files: an attachment row of the snapshot whose upload had finished has its
// file listed.
func captureServer(ctx context.Context, src Source) (*capture, error) {
	s, err := serverdb.Begin(ctx, src.Server, src.ServerTools)
	if err != nil {
		return nil, fmt.Errorf("capture database: %w", err)
	}
	c := &capture{server: s, cleanup: s.Close, checkRows: src.AttachmentsFolder != ""}
	c.db = DBInfo{Path: dumpBase(src.Server.Kind)}
	if c.checkRows {
		for _, r := range s.Attachments() { // PostgreSQL's, read in the snapshot
			c.rows = append(c.rows, attachment{path: r.Path, size: r.Size})
		}
	}
	if err := c.listFiles(src); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return c, nil
}

// writeDump streams the dump into the archive as numbered parts, records them
// in the manifest with the dump's facts, and ends the snapshot transaction.
func writeDump(ctx context.Context, tw *tar.Writer, c *capture, m *Manifest) error {
	info := c.server.Info()
	pw := &partWriter{tw: tw, base: dumpBase(info.Kind), buf: make([]byte, 0, DumpPartSize), mtime: m.CapturedAt.Truncate(time.Second)}
	if err := c.server.WriteTo(ctx, pw); err != nil {
		return err
	}
	if err := pw.flush(true); err != nil {
		return fmt.Errorf("archive dump: %w", err)
	}
	if err := c.server.Close(); err != nil {
		return fmt.Errorf("end snapshot transaction: %w", err)
	}
	info = c.server.Info()
	if info.Kind == serverdb.MySQL && c.checkRows {
		// mysqldump's snapshot: its rows are known only from the dump.
		for _, r := range c.server.Attachments() {
			c.rows = append(c.rows, attachment{path: r.Path, size: r.Size})
		}
	}
	m.Files = append(m.Files, pw.files...)
	m.DB = DBInfo{Path: pw.base, Tables: info.Tables, Server: &info}
	return nil
}

// partWriter cuts what is written into tar entries base.000000, base.000001, ...
type partWriter struct {
	tw    *tar.Writer
	base  string
	buf   []byte
	mtime time.Time
	files []File
}

func (p *partWriter) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		k := min(len(b), cap(p.buf)-len(p.buf))
		p.buf = append(p.buf, b[:k]...)
		b, n = b[k:], n+k
		if len(p.buf) == cap(p.buf) {
			if err := p.flush(false); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// flush writes the buffered part; last writes even an empty one when no part
// exists yet, so every dump has at least one.
func (p *partWriter) flush(last bool) error {
	if len(p.buf) == 0 && (!last || len(p.files) > 0) {
		return nil
	}
	name := fmt.Sprintf("%s.%06d", p.base, len(p.files))
	hdr := &tar.Header{Name: name, Mode: 0o600, Size: int64(len(p.buf)), ModTime: p.mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := p.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := p.tw.Write(p.buf); err != nil {
		return err
	}
	sum := sha256.Sum256(p.buf)
	p.files = append(p.files, File{Path: name, Size: int64(len(p.buf)), SHA256: hex.EncodeToString(sum[:])})
	p.buf = p.buf[:0]
	return nil
}

// dumpParts are the unpacked parts of the manifest's dump, in order.
func dumpParts(dir string, m *Manifest) []string {
	var parts []string
	for _, f := range m.Files {
		if strings.HasPrefix(f.Path, m.DB.Path+".") {
			parts = append(parts, filepath.Join(dir, filepath.FromSlash(f.Path)))
		}
	}
	sort.Strings(parts)
	return parts
}

// partsReader reads the parts one after the other, opening each in turn.
type partsReader struct {
	parts []string
	f     *os.File
}

func (r *partsReader) Read(b []byte) (int, error) {
	for {
		if r.f == nil {
			if len(r.parts) == 0 {
				return 0, io.EOF
			}
			f, err := os.Open(r.parts[0])
			if err != nil {
				return 0, err
			}
			r.f, r.parts = f, r.parts[1:]
		}
		n, err := r.f.Read(b)
		if err == io.EOF {
			r.f.Close()
			r.f = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (r *partsReader) Close() error {
	if r.f != nil {
		return r.f.Close()
	}
	return nil
}

// restoreServer handles the checked, unpacked dump of a server database: with
// a URL it loads it into that (empty, unless Force) database and checks the
// row counts against the manifest; without one it joins the parts into one
// dump file in the restored folder. The parts are removed either way.
func restoreServer(ctx context.Context, dir string, m *Manifest, o RestoreOptions, res *RestoreResult) error {
	info := m.DB.Server
	parts := dumpParts(dir, m)
	if len(parts) == 0 {
		return fmt.Errorf("%w: the manifest names a %s dump but the archive has no part of it", ErrDamaged, info.Kind)
	}
	res.Database = info
	defer os.RemoveAll(filepath.Join(dir, DumpFolder))
	r := &partsReader{parts: parts}
	defer r.Close()
	if o.DatabaseURL == nil {
		name := DumpFileName(info.Format)
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("write dump file: %w", err)
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return fmt.Errorf("write dump file: %w", err)
		}
		if err := errors.Join(f.Sync(), f.Close()); err != nil {
			return fmt.Errorf("write dump file: %w", err)
		}
		res.DumpFile = name
		res.Tables = info.Tables
		return nil
	}
	if err := serverdb.Load(ctx, o.DatabaseURL, r, serverdb.LoadOptions{Format: info.Format, Tools: o.ServerTools, Force: o.Force}); err != nil {
		return err
	}
	got, err := serverdb.Count(ctx, o.DatabaseURL)
	if err != nil {
		return fmt.Errorf("count the loaded rows: %w", err)
	}
	res.Tables = got
	if diffs := serverdb.CompareCounts(got, info.Tables); len(diffs) > 0 {
		return fmt.Errorf("the loaded database differs from the manifest: %s", strings.Join(diffs, "; "))
	}
	res.LoadedInto = o.DatabaseURL.String()
	return nil
}

// DumpFileName is the name of a server database's dump in a restored folder.
func DumpFileName(format string) string {
	if format == serverdb.FormatPGCustom {
		return "database.pgdump"
	}
	return "database.sql"
}
