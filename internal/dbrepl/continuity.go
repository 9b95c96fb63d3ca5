package dbrepl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
	"github.com/vwstream/vwstream/internal/vault"
)

// Continuity across restarts.
//
// Litestream resumes from the WAL position its last local LTX file records
// (WAL salts, offset and size). When the application keeps writing while the
// engine is stopped (a sidecar: Vaultwarden runs on its own), SQLite's
// automatic checkpoint can copy those frames into the database and restart
// the WAL: on the next start the engine finds new salts, reads the old frame
// just before its offset (still there when the new WAL is shorter) and
// continues from the head of the new WAL, so the transactions committed
// between its last capture and the WAL restart never reach the replica. The
// restored database misses them while later rows are present, and passes
// integrity_check.
//
// So the first LTX file written after a start is not trusted until proven:
// it must either continue the previous file exactly (same WAL salts, its
// offset equal to the previous file's end, so the engine read every frame
// after its last position: its WAL reader checks the frame checksum chain
// from there) or hold every page of the database (a full copy, which the
// engine writes when it notices the WAL was overwritten). Otherwise the
// replica cannot be proven whole, and the file is rewritten, before it is
// uploaded, as a full copy of the database at its transaction: the engine's
// own consistent snapshot reader supplies the pages, the file keeps its
// header (position, WAL salts and offsets) so the engine continues from it as
// before. Every later file is written by the same running engine, which
// handles the WAL restarts it sees itself.
//
// A marker in the engine's state folder records the last transaction proven,
// so files written by a process killed before it proved them are checked by
// the next start too; nothing unproven is uploaded. A restore of the
// replica's newest transaction writes the marker at that transaction, with
// the engine's file of it (seed.go says why the restored state is proven).

// continuityMarkerName is the marker's file name in litestream's state folder.
const continuityMarkerName = "vwstream-continuity.json"

type continuityMarker struct {
	ProvenTXID uint64 `json:"proven_txid"` // every local LTX file up to here is continuous
}

// readContinuityMarker returns the proven transaction and whether a marker exists.
func readContinuityMarker(dbPath string) (ltx.TXID, bool, error) {
	b, err := os.ReadFile(filepath.Join(metaDir(dbPath), continuityMarkerName))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	} else if err != nil {
		return 0, false, fmt.Errorf("read continuity marker: %w", err)
	}
	var m continuityMarker
	if err := json.Unmarshal(b, &m); err != nil {
		// A torn marker (power loss) proves nothing: check from the start.
		return 0, true, nil
	}
	return ltx.TXID(m.ProvenTXID), true, nil
}

// writeContinuityMarker records txid as proven. durable syncs it to disk.
func writeContinuityMarker(dbPath string, txid ltx.TXID, durable bool) error {
	dir := metaDir(dbPath)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("write continuity marker: %w", err)
	}
	b, err := json.Marshal(continuityMarker{ProvenTXID: uint64(txid)})
	if err != nil {
		return fmt.Errorf("write continuity marker: %w", err)
	}
	path := filepath.Join(dir, continuityMarkerName)
	write := vault.ReplaceFile
	if durable {
		write = vault.WriteFileAtomic
	}
	if err := write(path, b, 0o600); err != nil {
		return fmt.Errorf("write continuity marker: %w", err)
	}
	return nil
}

// continuityBase is the last transaction start-up may trust: the marker's,
// or without a marker the newest local LTX file. legacy reports local files
// without a marker: a state folder of a version without these checks, whose
// replica may have holes already; the first file of this start is then
// written as a full copy, which makes restores of every later state whole.
func continuityBase(dbPath string) (base ltx.TXID, legacy bool, err error) {
	local, err := localStateTXID(dbPath)
	if err != nil {
		return 0, false, err
	}
	proven, ok, err := readContinuityMarker(dbPath)
	if err != nil {
		return 0, false, err
	}
	if ok && proven < local {
		return proven, false, nil
	}
	return local, !ok && local > 0, nil
}

// ltxSummary is what continuity needs of a local LTX file.
type ltxSummary struct {
	hdr   ltx.Header
	pages int // pages it holds
}

// full reports whether the file holds every page of the database.
func (s ltxSummary) full() bool {
	want := int(s.hdr.Commit)
	if lock := ltx.LockPgno(s.hdr.PageSize); s.hdr.Commit >= lock {
		want--
	}
	return s.pages >= want
}

// continues reports whether s starts where prev ended in the same WAL.
func (s ltxSummary) continues(prev ltx.Header) bool {
	return s.hdr.WALSalt1 == prev.WALSalt1 && s.hdr.WALSalt2 == prev.WALSalt2 &&
		s.hdr.WALOffset == prev.WALOffset+prev.WALSize
}

// readLTXSummary decodes the local level-0 file of txid.
func readLTXSummary(db *litestream.DB, txid ltx.TXID) (ltxSummary, error) {
	var s ltxSummary
	f, err := os.Open(db.LTXPath(0, txid, txid))
	if err != nil {
		return s, err
	}
	defer func() { _ = f.Close() }()
	dec := ltx.NewDecoder(f)
	if err := dec.DecodeHeader(); err != nil {
		return s, fmt.Errorf("ltx file %d: %w", txid, err)
	}
	s.hdr = dec.Header()
	buf := make([]byte, s.hdr.PageSize)
	for {
		var ph ltx.PageHeader
		if err := dec.DecodePage(&ph, buf); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return s, fmt.Errorf("ltx file %d: %w", txid, err)
		}
		s.pages++
	}
	return s, nil
}

// checkContinuity proves the local LTX files after base, or rewrites the
// newest as a full copy of the database when it cannot. It reports whether
// the files are proven (false: nothing new to prove yet) and whether a
// repair was made. Callers hold syncMu, so no capture runs meanwhile.
func (r *Replicator) checkContinuity(ctx context.Context) (proven, repaired bool, err error) {
	pos, err := r.db.Pos()
	if err != nil {
		return false, false, fmt.Errorf("local position: %w", err)
	}
	base := r.continuityBase
	// Nothing captured since start yet, or only what the replica already had
	// (litestream fetched its newest file): wait for the first new file.
	if pos.TXID <= base || pos.TXID <= r.baseTXID {
		return false, false, nil
	}
	// After a restore that left no seed (an older transaction) the state
	// folder is new: litestream fetched the replica's newest file and
	// continues from it.
	if base < r.baseTXID {
		if _, err := os.Stat(r.db.LTXPath(0, r.baseTXID, r.baseTXID)); err == nil {
			base = r.baseTXID
		}
	}
	reason := ""
	if r.legacy {
		reason = "first start with continuity checks: the replica written before may have holes"
	}
	prev, err := readLTXSummary(r.db, base)
	if base > 0 && err != nil {
		reason = fmt.Sprintf("the last file before the restart (transaction %d) is unreadable: %v", base, err)
	}
	for txid := base + 1; reason == "" && txid <= pos.TXID; txid++ {
		cur, err := readLTXSummary(r.db, txid)
		if err != nil {
			reason = fmt.Sprintf("transaction %d unreadable: %v", txid, err)
			break
		}
		if !cur.full() && !cur.continues(prev.hdr) {
			reason = fmt.Sprintf("transaction %d starts at WAL offset %d (salts %08x %08x) but the previous one ended at %d (salts %08x %08x): "+
				"the WAL was checkpointed and restarted while replication was stopped",
				txid, cur.hdr.WALOffset, cur.hdr.WALSalt1, cur.hdr.WALSalt2,
				prev.hdr.WALOffset+prev.hdr.WALSize, prev.hdr.WALSalt1, prev.hdr.WALSalt2)
		}
		prev = cur
	}
	if reason != "" {
		if err := r.rewriteFull(ctx, pos.TXID); err != nil {
			return false, false, fmt.Errorf("repair replica continuity at transaction %d: %w", pos.TXID, err)
		}
		r.opt.Logger.Warn("replica continuity not proven after restart; transaction written as a full copy of the database",
			"db", r.opt.DBPath, "txid", uint64(pos.TXID), "reason", reason)
		repaired = true
	}
	if err := writeContinuityMarker(r.opt.DBPath, pos.TXID, true); err != nil {
		return false, repaired, err
	}
	r.markedTXID = pos.TXID
	return true, repaired, nil
}

// rewriteFull replaces the local level-0 file of txid, not uploaded yet,
// with one holding every page of the database at that transaction, read by
// litestream's snapshot reader (the database file and the WAL up to the
// captured position, under the engine's lock).
func (r *Replicator) rewriteFull(ctx context.Context, txid ltx.TXID) error {
	path := r.db.LTXPath(0, txid, txid)
	orig, err := readLTXSummary(r.db, txid)
	if err != nil {
		return err
	}
	pos, rc, err := r.db.SnapshotReader(ctx)
	if err != nil {
		return fmt.Errorf("read database: %w", err)
	}
	defer func() { _ = rc.Close() }()
	if pos.TXID != txid {
		return fmt.Errorf("database moved to transaction %d while reading it", pos.TXID)
	}
	dec := ltx.NewDecoder(rc)
	if err := dec.DecodeHeader(); err != nil {
		return fmt.Errorf("read database: %w", err)
	}
	hdr := orig.hdr
	hdr.Commit = dec.Header().Commit
	return writeLTX(path, hdr, dec, "read database", false)
}

// writeLTX writes the pages dec has left under hdr to path, durably (a
// temporary file synced and renamed, then the folder synced). what names the
// source in errors; keepChecksum carries the source's post-apply checksum
// over, when hdr has checksums.
func writeLTX(path string, hdr ltx.Header, dec *ltx.Decoder, what string, keepChecksum bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close(); _ = os.Remove(tmp) }()
	enc, err := ltx.NewEncoder(f)
	if err != nil {
		return err
	}
	if err := enc.EncodeHeader(hdr); err != nil {
		return fmt.Errorf("encode header: %w", err)
	}
	buf := make([]byte, hdr.PageSize)
	for {
		var ph ltx.PageHeader
		if err := dec.DecodePage(&ph, buf); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := enc.EncodePage(ph, buf); err != nil {
			return fmt.Errorf("encode page %d: %w", ph.Pgno, err)
		}
	}
	if err := dec.Close(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if keepChecksum && !hdr.NoChecksum() {
		enc.SetPostApplyChecksum(dec.Trailer().PostApplyChecksum)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return vault.SyncDir(filepath.Dir(path))
}
