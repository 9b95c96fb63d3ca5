package dbrepl

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"os"
	"path/filepath"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"

	"github.com/vwstream/vwstream/internal/vault"
)

// Replication state after a restore of the replica's newest transaction.
//
// A restored database has no litestream state. Left so, the engine's first
// start fetches the replica's newest level-0 file, finds in its header the
// WAL of the process that wrote it, not the WAL beside this database, and
// writes the whole database as its next transaction: a cold start uploads
// again everything it has just downloaded, and the first writes after it wait
// for that upload.
//
// When the restore brought back the replica's newest transaction T, the
// restored database is the replica's state at T, so Restore leaves the state
// the engine itself would have left had it captured T from this database:
//
//   - a WAL beside the database holding one committed frame, page 1 of the
//     restored database unchanged (so a transaction that changes nothing),
//     under fresh random salts;
//   - in the state folder, the level-0 file of T: the replica's own file of T
//     (the same pages, which the engine's compaction reads instead of the
//     stored copy when it finds one), its header recording that frame as the
//     end of T in the WAL;
//   - the continuity marker (continuity.go) at T.
//
// At start the engine checks them as at any restart (the WAL's salts are the
// file's, the frame before the recorded end is there) and captures every
// later frame as T+1, a file as large as the write; the continuity check
// accepts T+1 because it starts in the same WAL where T ends.
//
// Why T is a proven base: the marker claims that the replica holds every
// change up to T and that the local files continue it. The restore rebuilt
// the database from the replica's files up to T and checked it (every LTX
// checksum, the pages cover the database, the post-apply checksum where the
// replica has one, PRAGMA integrity_check), and T is the replica's newest
// transaction, so every later file applies to exactly this state. The added
// frame only rewrites page 1 with its own bytes: database and WAL together
// still hold the state of T. Anything that changes the WAL before the engine
// opens it (SQLite deletes the WAL when its last connection closes without
// the engine's persistent-WAL setting, a checkpoint restarts it) changes its
// salts or shortens it, and the engine writes a full copy as it would have
// without the seed. A restore of an older transaction is never seeded: the
// replica's history after it is not the local database's, so the next file
// must hold the whole database, at the replica's newest transaction + 1,
// which the engine writes on its own after fetching that newest file.
//
// The pieces are written in an order that is safe to interrupt: the WAL,
// then the marker, then the file of T, each synced to disk. Until the file of
// T is in place the engine fetches the replica's (the seed is ignored, a full
// copy follows); once it is, the WAL and marker it relies on are durable.

// walHeaderMagicBE marks a WAL whose checksums are computed on big-endian words.
const walHeaderMagicBE = 0x377f0683

// walFormatVersion is the only WAL format version SQLite writes.
const walFormatVersion = 3007000

// seedSource gathers, during a restore of the replica's newest transaction
// T, what seedLatest needs: the pages of T and the header of the replica's
// level-0 file of T. When the plan's last file holds T alone (the level-0
// file itself, or a compacted or snapshot file of the same range, which
// holds the same pages) it is copied as applied, and only the level-0 header
// is fetched when the file was another level's; otherwise the level-0 file
// is fetched beside the restore, which is the case of a plan ending with a
// compacted file of several transactions, where the file of T is one write.
type seedSource struct {
	keep   *keptFile
	path   string
	cancel context.CancelFunc
	done   chan error
	header *ltx.Header // the level-0 header, when the pages come from another level
}

// startSeed starts gathering the seed of a plan whose last file is last.
func startSeed(ctx context.Context, client *replicaClient, last *ltx.FileInfo, path string) *seedSource {
	txid := last.MaxTXID
	ctx, cancel := context.WithCancel(ctx)
	s := &seedSource{path: path, cancel: cancel, done: make(chan error, 1)}
	switch {
	case last.MinTXID != txid:
		go func() { s.done <- fetchLTX(ctx, client, 0, txid, txid, path) }()
	case last.Level == 0:
		s.keep = &keptFile{level: 0, minTXID: txid, maxTXID: txid, path: path}
		s.done <- nil
	default:
		s.keep = &keptFile{level: last.Level, minTXID: txid, maxTXID: txid, path: path}
		go func() {
			hdr, err := client.readHeader(ctx, 0, txid, txid)
			s.header = &hdr
			s.done <- err
		}()
	}
	return s
}

// kept is the file the restore copies while applying it, if any.
func (s *seedSource) kept() *keptFile {
	if s == nil {
		return nil
	}
	return s.keep
}

// stop ends a fetch still running and waits for it.
func (s *seedSource) stop() {
	s.cancel()
	if s.done != nil {
		<-s.done
		s.done = nil
	}
}

// apply seeds the state of the restored database at out.
func (s *seedSource) apply(out string) error {
	err := <-s.done
	s.done = nil
	if err != nil {
		return fmt.Errorf("replica's file of the restored transaction: %w", err)
	}
	if s.keep != nil && !s.keep.done {
		return errors.New("the plan's file of the restored transaction was not copied")
	}
	return seedLatest(out, s.path, s.header, s.keep)
}

// seedLatest leaves litestream's state for the restored database at out, at
// the one transaction of the replica file copied to raw. l0, when set, is the
// header of the replica's level-0 file of that transaction, whose pages raw
// holds under another level's header. checked, when set, is the copy the
// restore made of a stream its decoder checked: raw must then match that
// stream's SHA-256, and its pages are not decoded again; otherwise (a file
// fetched on its own) every page is decoded and its file checksum matched
// here. Nothing may have the database open.
func seedLatest(out, raw string, l0 *ltx.Header, checked *keptFile) (err error) {
	f, err := os.OpenFile(raw, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	if checked != nil {
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return fmt.Errorf("replica file: %w", err)
		}
		if got := h.Sum(nil); !bytes.Equal(got, checked.sum[:]) {
			return errors.New("replica file: the copy on disk differs from the stream the restore checked")
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
	}
	dec := ltx.NewDecoder(f)
	if err := dec.DecodeHeader(); err != nil {
		return fmt.Errorf("replica file: %w", err)
	}
	hdr := dec.Header()
	txid := hdr.MaxTXID
	if hdr.MinTXID != txid {
		return fmt.Errorf("replica file holds transactions %s-%s, not one", hdr.MinTXID, txid)
	}
	if l0 != nil {
		if l0.MinTXID != txid || l0.MaxTXID != txid || l0.PageSize != hdr.PageSize || l0.Commit != hdr.Commit || l0.Flags != hdr.Flags {
			return fmt.Errorf("replica's level-0 file of transaction %s does not match the file restored", txid)
		}
		hdr = *l0
	}
	// SQLite writes a page size of 65536 as 1 in the WAL header, which the
	// engine's WAL reader does not undo; such a database is not seeded.
	if hdr.PageSize < 512 || hdr.PageSize > 32768 {
		return fmt.Errorf("page size %d is not seeded", hdr.PageSize)
	}

	page1, err := restoredPage1(out, hdr)
	if err != nil {
		return err
	}
	var salts [8]byte
	if _, err := rand.Read(salts[:]); err != nil {
		return err
	}
	salt1, salt2 := binary.BigEndian.Uint32(salts[0:]), binary.BigEndian.Uint32(salts[4:])

	wal := out + "-wal"
	if err := writeSeedWAL(wal, hdr.PageSize, hdr.Commit, salt1, salt2, page1); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(wal)
		}
	}()
	if err := writeContinuityMarker(out, txid, true); err != nil {
		return err
	}

	l0dir := filepath.Join(metaDir(out), "ltx", "0")
	if err := os.MkdirAll(l0dir, 0o750); err != nil {
		return err
	}
	path := filepath.Join(l0dir, ltx.FormatFilename(txid, txid))
	seeded := hdr
	seeded.WALOffset = litestream.WALHeaderSize
	seeded.WALSize = int64(litestream.WALFrameHeaderSize) + int64(hdr.PageSize)
	seeded.WALSalt1, seeded.WALSalt2 = salt1, salt2

	// raw is checked through (every page decoded, its file checksum matched,
	// here or by the restore that copied it); its pages then stay as they are
	// and only the header and the file checksum change, in place (raw is the
	// restore's own copy).
	var pages int
	var sized bool
	if checked != nil {
		pages, sized = checked.pages, checked.sized
	} else if pages, sized, err = decodeThrough(dec, hdr.PageSize); err != nil {
		return fmt.Errorf("replica file: %w", err)
	}
	if !sized {
		// Pages of the older LTX layout: the file is written again.
		return reencodeSeed(raw, path, seeded)
	}
	if err := reheader(f, seeded, pages); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := os.Rename(raw, path); err != nil {
		return err
	}
	return vault.SyncDir(l0dir)
}

// decodeThrough decodes every page after dec's header and matches the file
// checksum, and says how many pages there are and whether all of them are in
// the size-prefixed block layout.
func decodeThrough(dec *ltx.Decoder, pageSize uint32) (pages int, sized bool, err error) {
	sized = true
	buf := make([]byte, pageSize)
	for {
		var ph ltx.PageHeader
		if err := dec.DecodePage(&ph, buf); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return 0, false, err
		}
		pages++
		sized = sized && ph.Flags&ltx.PageHeaderFlagSize != 0
	}
	return pages, sized, dec.Close()
}

// reheader gives the LTX file f, checked and holding pages pages all in the
// size-prefixed block layout, the header hdr (same size, so every offset in
// the file stays right) and the file checksum that goes with it. The
// checksum, CRC-64/ISO over the header, each page's header, size and
// uncompressed bytes, the page index and the trailer's first half, is linear:
// changing the header by d changes it by the CRC of d followed by as many
// zero bytes as the checksum covers after the header, so no page is read again.
func reheader(f *os.File, hdr ltx.Header, pages int) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	oldHdr := make([]byte, ltx.HeaderSize)
	if _, err := f.ReadAt(oldHdr, 0); err != nil {
		return fmt.Errorf("replica file: %w", err)
	}
	tail := make([]byte, 8+ltx.TrailerSize) // the page index's size, then the trailer
	if _, err := f.ReadAt(tail, size-int64(len(tail))); err != nil {
		return fmt.Errorf("replica file: %w", err)
	}
	indexSize := int64(binary.BigEndian.Uint64(tail[:8]))
	oldSum := binary.BigEndian.Uint64(tail[8+ltx.TrailerChecksumOffset:])
	newHdr, err := hdr.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encode header: %w", err)
	}
	// Bytes the checksum covers after the header.
	covered := int64(pages)*int64(ltx.PageHeaderSize+4+int(hdr.PageSize)) + ltx.PageHeaderSize + indexSize + 8 + ltx.TrailerChecksumOffset
	d := make([]byte, ltx.HeaderSize)
	for i := range d {
		d[i] = oldHdr[i] ^ newHdr[i]
	}
	// The flag bit is forced on in the stored checksum: the other 63 carry over.
	newSum := uint64(ltx.ChecksumFlag) | ((oldSum ^ crc64Zeros(crc64Raw(d), covered)) &^ uint64(ltx.ChecksumFlag))
	if _, err := f.WriteAt(newHdr, 0); err != nil {
		return err
	}
	var sum [8]byte
	binary.BigEndian.PutUint64(sum[:], newSum)
	if _, err := f.WriteAt(sum[:], size-8); err != nil {
		return err
	}
	return nil
}

// crc64ISOReflected is CRC-64/ISO's polynomial, bit-reflected (hash/crc64's ISO).
const crc64ISOReflected = 0xD800000000000000

var crc64ISOTable = crc64.MakeTable(crc64.ISO)

// crc64Raw is the CRC-64/ISO register over b from zero, without the initial
// and final inversions (the linear part of the checksum).
func crc64Raw(b []byte) uint64 {
	return ^crc64.Update(^uint64(0), crc64ISOTable, b)
}

// crc64Zeros advances a raw CRC-64/ISO register over n zero bytes, in
// O(log n) steps (the operator for one zero bit squared up, as zlib's
// crc32_combine does for CRC-32).
func crc64Zeros(crc uint64, n int64) uint64 {
	if n <= 0 || crc == 0 {
		return crc
	}
	var odd, even [64]uint64
	odd[0] = crc64ISOReflected // one zero bit
	row := uint64(1)
	for i := 1; i < 64; i++ {
		odd[i] = row
		row <<= 1
	}
	gf2Square(&even, &odd) // two zero bits
	gf2Square(&odd, &even) // four
	for {
		gf2Square(&even, &odd) // one byte, then 4, 16, ...
		if n&1 != 0 {
			crc = gf2Times(&even, crc)
		}
		n >>= 1
		if n == 0 {
			break
		}
		gf2Square(&odd, &even)
		if n&1 != 0 {
			crc = gf2Times(&odd, crc)
		}
		n >>= 1
		if n == 0 {
			break
		}
	}
	return crc
}

func gf2Times(mat *[64]uint64, vec uint64) uint64 {
	var sum uint64
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat *[64]uint64) {
	for n := range 64 {
		square[n] = gf2Times(mat, mat[n])
	}
}

// reencodeSeed writes the pages of raw (already checked) under hdr to path.
func reencodeSeed(raw, path string, hdr ltx.Header) (err error) {
	f, err := os.Open(raw)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	dec := ltx.NewDecoder(f)
	if err := dec.DecodeHeader(); err != nil {
		return fmt.Errorf("replica file: %w", err)
	}
	return writeLTX(path, hdr, dec, "replica file", true)
}

// restoredPage1 returns page 1 of the restored database after checking that
// the database is what hdr describes: its size, page size and WAL mode.
func restoredPage1(out string, hdr ltx.Header) ([]byte, error) {
	db, err := os.Open(out)
	if err != nil {
		return nil, err
	}
	defer func() { _ = db.Close() }()
	fi, err := db.Stat()
	if err != nil {
		return nil, err
	}
	if want := int64(hdr.Commit) * int64(hdr.PageSize); fi.Size() != want {
		return nil, fmt.Errorf("restored database has %d bytes, its last transaction %d", fi.Size(), want)
	}
	page := make([]byte, hdr.PageSize)
	if _, err := db.ReadAt(page, 0); err != nil {
		return nil, err
	}
	if got := uint32(binary.BigEndian.Uint16(page[16:18])); got != hdr.PageSize {
		return nil, fmt.Errorf("restored database's page size %d is not the replica's %d", got, hdr.PageSize)
	}
	if page[18] != 2 || page[19] != 2 {
		return nil, errors.New("restored database is not in WAL mode")
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Lstat(out + suffix); err == nil {
			return nil, fmt.Errorf("%s exists", filepath.Base(out+suffix))
		}
	}
	return page, nil
}

// writeSeedWAL creates wal holding one committed frame: page 1 as given, with
// the database at commit pages. The file is written aside, synced and linked
// into place, so it appears whole and never replaces a WAL that exists.
func writeSeedWAL(wal string, pageSize, commit, salt1, salt2 uint32, page1 []byte) error {
	b := make([]byte, litestream.WALHeaderSize+litestream.WALFrameHeaderSize+int(pageSize))
	h := b[:litestream.WALHeaderSize]
	binary.BigEndian.PutUint32(h[0:], walHeaderMagicBE)
	binary.BigEndian.PutUint32(h[4:], walFormatVersion)
	binary.BigEndian.PutUint32(h[8:], pageSize)
	binary.BigEndian.PutUint32(h[12:], 0) // checkpoint sequence
	binary.BigEndian.PutUint32(h[16:], salt1)
	binary.BigEndian.PutUint32(h[20:], salt2)
	s0, s1 := litestream.WALChecksum(binary.BigEndian, 0, 0, h[:24])
	binary.BigEndian.PutUint32(h[24:], s0)
	binary.BigEndian.PutUint32(h[28:], s1)

	fr := b[litestream.WALHeaderSize:]
	binary.BigEndian.PutUint32(fr[0:], 1)      // page number
	binary.BigEndian.PutUint32(fr[4:], commit) // database size after this commit
	binary.BigEndian.PutUint32(fr[8:], salt1)
	binary.BigEndian.PutUint32(fr[12:], salt2)
	copy(fr[litestream.WALFrameHeaderSize:], page1)
	s0, s1 = litestream.WALChecksum(binary.BigEndian, s0, s1, fr[:8])
	s0, s1 = litestream.WALChecksum(binary.BigEndian, s0, s1, fr[litestream.WALFrameHeaderSize:])
	binary.BigEndian.PutUint32(fr[16:], s0)
	binary.BigEndian.PutUint32(fr[20:], s1)

	tmp, err := os.CreateTemp(filepath.Dir(wal), "."+filepath.Base(wal)+".seed-")
	if err != nil {
		return err
	}
	defer func() { _ = tmp.Close(); _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(b); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), wal); err != nil {
		return err
	}
	return vault.SyncDir(filepath.Dir(wal))
}

// fetchLTX copies one replica file, decrypted, to path.
func fetchLTX(ctx context.Context, client *replicaClient, level int, minTXID, maxTXID ltx.TXID, path string) error {
	rc, err := client.OpenLTXFile(ctx, level, minTXID, maxTXID, 0, 0)
	if err != nil {
		return err
	}
	defer func() { _ = rc.Close() }()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
