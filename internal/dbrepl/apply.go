package dbrepl

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// restoreRetries bounds how often a restore computes a new plan after a file
// of it was removed meanwhile (compacted away), as litestream's restore does.
const restoreRetries = 3

// applyPlanRetrying applies plan to path, computing a new plan to the same
// transaction when a file of the current one has disappeared. keep, when not
// nil, receives a copy of one file of the plan as read (seed.go).
// It returns the header of the plan's newest file.
func applyPlanRetrying(ctx context.Context, client *replicaClient, plan []*ltx.FileInfo, path string, keep *keptFile, logger *slog.Logger) (ltx.Header, error) {
	target := plan[len(plan)-1].MaxTXID
	for attempt := 0; ; attempt++ {
		newest, err := applyPlan(ctx, client, plan, path, keep)
		if err == nil || ctx.Err() != nil || !errors.Is(err, os.ErrNotExist) {
			return newest, err
		}
		if attempt >= restoreRetries {
			return newest, fmt.Errorf("restore plan retries exhausted for txid %s: %w", target, err)
		}
		logger.Debug("restore file disappeared, recalculating plan", "target", target, "attempt", attempt+1, "error", err)
		client.forgetListing() // the plan came from a listing that is out of date
		if plan, err = litestream.CalcRestorePlan(ctx, client, target, time.Time{}, logger); err != nil {
			return newest, fmt.Errorf("recalculate restore plan for txid %s: %w", target, err)
		}
	}
}

// applyPlan writes the database that plan describes to path, replacing it.
//
// It checks what litestream's restore checks, without that restore's detour
// through one compacted LTX file (decode, re-encode and compress, pipe, decode
// again), which cost more CPU than reading the replica: every file is read
// whole and must pass its LTX file checksum (and a snapshot its own
// post-apply checksum); page sizes must agree and TXIDs follow on; the plan
// must start with a snapshot; the pages written must cover the database; and
// together they must match the post-apply checksum of the plan's last file.
// Files are applied newest first, so each page is written and summed once.
func applyPlan(ctx context.Context, client *replicaClient, plan []*ltx.FileInfo, path string, keep *keptFile) (ltx.Header, error) {
	a := &planApplier{hasher: ltx.NewHasher(), sumPages: len(plan) > 1, keep: keep}
	err := a.run(ctx, client, plan, path)
	if a.newest == nil {
		return ltx.Header{}, err
	}
	return *a.newest, err
}

// run applies plan to path (applyPlan).
func (a *planApplier) run(ctx context.Context, client *replicaClient, plan []*ltx.FileInfo, path string) (err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	defer func() {
		if e := f.Close(); e != nil && err == nil {
			err = fmt.Errorf("close database: %w", e)
		}
	}()

	a.f = f

	// The next files are requested while one is applied, so a plan of many
	// files costs one round trip to the store, not one per file.
	ctx, cancel := context.WithCancel(ctx)
	pending := make([]chan openedFile, len(plan))
	defer func() {
		cancel()
		for _, ch := range pending {
			if ch != nil {
				if o := <-ch; o.rc != nil {
					_ = o.rc.Close()
				}
			}
		}
	}()
	next := len(plan) - 1 // the next file to request
	var last ltx.Trailer
	for i := len(plan) - 1; i >= 0; i-- {
		for ; next >= 0 && next >= i-openAhead; next-- {
			ch, info := make(chan openedFile, 1), plan[next]
			pending[next] = ch
			go func() {
				rc, err := client.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
				ch <- openedFile{rc, err}
			}()
		}
		o := <-pending[i]
		pending[i] = nil
		if o.err != nil {
			return o.err
		}
		hdr, trailer, err := a.applyFile(ctx, o.rc, plan[i])
		if err != nil {
			return err
		}
		if i == len(plan)-1 {
			last = trailer
		}
		if i == 0 && !hdr.IsSnapshot() {
			return fmt.Errorf("restore plan starts with %s, not a snapshot", ltxKey(plan[0].Level, plan[0].MinTXID, plan[0].MaxTXID))
		}
	}
	for pgno := uint32(1); pgno <= a.commit; pgno++ {
		if !a.written[pgno] && pgno != a.lockPgno {
			return fmt.Errorf("restore plan lacks page %d of %d", pgno, a.commit)
		}
	}
	// A single snapshot's decoder has already matched its pages to its
	// post-apply checksum; a longer plan is checked here as a whole.
	if a.sumPages {
		if got := ltx.ChecksumFlag | a.chksum; got != last.PostApplyChecksum {
			return fmt.Errorf("restored database checksum %s does not match the replica's %s", got, last.PostApplyChecksum)
		}
	}
	if err := f.Truncate(int64(a.commit) * int64(a.pageSize)); err != nil {
		return fmt.Errorf("size database: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync database: %w", err)
	}
	return nil
}

// planApplier is the state of one applyPlan as files are applied newest first.
type planApplier struct {
	f        *os.File
	hasher   hash.Hash64
	sumPages bool // sum the pages written, for a plan of more than one file

	newest   *ltx.Header // the plan's last file: its page size and commit are the database's
	next     *ltx.Header // the file applied before, which follows this one in TXID order
	pageSize uint32
	commit   uint32
	lockPgno uint32
	written  []bool // by page number
	chksum   ltx.Checksum

	keep  *keptFile // a file to copy as it is read; nil for none
	pages *pageRun  // pages waiting to be written, reused from file to file
}

// writeRunPages is how many consecutive pages are written with one call.
const writeRunPages = 256

// pageRun collects pages of consecutive numbers, first to first+n-1, in buf.
type pageRun struct {
	buf      []byte
	pageSize int
	first    uint32
	n        int
}

// slot is where the next page is decoded: right after the run.
func (r *pageRun) slot() []byte {
	return r.buf[r.n*r.pageSize : (r.n+1)*r.pageSize]
}

// flush writes the run at its place in f and empties it.
func (r *pageRun) flush(f *os.File) error {
	if r.n == 0 {
		return nil
	}
	if _, err := f.WriteAt(r.buf[:r.n*r.pageSize], int64(r.first-1)*int64(r.pageSize)); err != nil {
		return fmt.Errorf("write pages %d-%d: %w", r.first, r.first+uint32(r.n)-1, err)
	}
	r.n = 0
	return nil
}

// restartWith writes the run and makes page (decoded in its slot) the first
// of an empty run; the caller sets first.
func (r *pageRun) restartWith(f *os.File, page []byte) error {
	n := r.n
	if err := r.flush(f); err != nil {
		return err
	}
	if n > 0 {
		copy(r.buf[:r.pageSize], page)
	}
	return nil
}

// keptFile asks applyPlan for a copy of one file of the plan, exactly as
// read from the store (decrypted), so a restore need not fetch it twice.
type keptFile struct {
	level            int
	minTXID, maxTXID ltx.TXID
	path             string // where the copy goes
	done             bool   // the copy is complete and the file passed its checks

	// Set with done, from the stream the decoder checked: the SHA-256 of the
	// bytes copied, so the copy can be matched against them without decoding
	// it again, and its pages as decoded.
	sum   [sha256.Size]byte
	pages int  // pages in the file
	sized bool // every page in the size-prefixed block layout
}

// matches reports whether info names the kept file.
func (k *keptFile) matches(info *ltx.FileInfo) bool {
	return k != nil && info.Level == k.level && info.MinTXID == k.minTXID && info.MaxTXID == k.maxTXID
}

// openAhead is how many files of a plan are requested ahead of the one
// being applied.
const openAhead = 4

// openedFile is a requested file of the plan.
type openedFile struct {
	rc  io.ReadCloser
	err error
}

// applyFile reads one LTX file (rc, which it closes) whole and writes the
// pages no newer file wrote.
func (a *planApplier) applyFile(ctx context.Context, rc io.ReadCloser, info *ltx.FileInfo) (ltx.Header, ltx.Trailer, error) {
	key := ltxKey(info.Level, info.MinTXID, info.MaxTXID)
	var err error
	var copyTo *os.File
	var copySum hash.Hash
	if a.keep.matches(info) {
		a.keep.done = false
		if copyTo, err = os.Create(a.keep.path); err != nil {
			_ = rc.Close()
			return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("keep %s: %w", key, err)
		}
		defer func() { _ = copyTo.Close() }()
		copySum = sha256.New()
		rc = teeReadCloser{io.TeeReader(rc, io.MultiWriter(copyTo, copySum)), rc}
	}
	ra := newReadAhead(rc)
	defer func() { _ = ra.Close() }()

	dec := ltx.NewDecoder(ra)
	if err := dec.DecodeHeader(); err != nil {
		return ltx.Header{}, ltx.Trailer{}, fmt.Errorf("%s: decode header: %w", key, err)
	}
	hdr := dec.Header()
	switch {
	case hdr.MinTXID != info.MinTXID || hdr.MaxTXID != info.MaxTXID:
		return hdr, ltx.Trailer{}, fmt.Errorf("%s: header holds txids %s-%s", key, hdr.MinTXID, hdr.MaxTXID)
	case a.newest == nil:
		a.newest = &hdr
		a.sumPages = a.sumPages && !hdr.NoChecksum() // litestream 0.5 writes no post-apply checksums
		a.pageSize, a.commit, a.lockPgno = hdr.PageSize, hdr.Commit, hdr.LockPgno()
		a.written = make([]bool, int(hdr.Commit)+1)
	case hdr.PageSize != a.pageSize:
		return hdr, ltx.Trailer{}, fmt.Errorf("%s: page size %d, later files have %d", key, hdr.PageSize, a.pageSize)
	case !ltx.IsContiguous(hdr.MaxTXID, a.next.MinTXID, a.next.MaxTXID):
		return hdr, ltx.Trailer{}, fmt.Errorf("%s: not followed by txids %s-%s", key, a.next.MinTXID, a.next.MaxTXID)
	}

	// Pages are decoded into a run of consecutive page numbers and written
	// with one call per run (a snapshot's pages come in order): one write
	// call per 4 KB page cost more CPU than the copy itself.
	if a.pages == nil || len(a.pages.buf) != writeRunPages*int(hdr.PageSize) {
		a.pages = &pageRun{buf: make([]byte, writeRunPages*int(hdr.PageSize)), pageSize: int(hdr.PageSize)}
	}
	run := a.pages
	run.n = 0
	var ph ltx.PageHeader
	pages, sized := 0, true
	for i := 0; ; i++ {
		if i%1024 == 0 && ctx.Err() != nil {
			return hdr, ltx.Trailer{}, ctx.Err()
		}
		if run.n == writeRunPages {
			if err := run.flush(a.f); err != nil {
				return hdr, ltx.Trailer{}, err
			}
		}
		data := run.slot()
		if err := dec.DecodePage(&ph, data); err == io.EOF {
			break
		} else if err != nil {
			return hdr, ltx.Trailer{}, fmt.Errorf("%s: decode page %d: %w", key, i, err)
		}
		pages++
		sized = sized && ph.Flags&ltx.PageHeaderFlagSize != 0
		pgno := ph.Pgno
		if pgno > a.commit || pgno == a.lockPgno || a.written[pgno] {
			continue // beyond the final size, or a newer file has it
		}
		if run.n > 0 && pgno != run.first+uint32(run.n) {
			// Not next to the run: write the run, then start one with this page.
			if err := run.restartWith(a.f, data); err != nil {
				return hdr, ltx.Trailer{}, err
			}
		}
		if run.n == 0 {
			run.first = pgno
		}
		run.n++
		a.written[pgno] = true
		if a.sumPages {
			a.chksum ^= ltx.ChecksumPageWithHasher(a.hasher, pgno, data)
		}
	}
	if err := run.flush(a.f); err != nil {
		return hdr, ltx.Trailer{}, err
	}
	if err := dec.Close(); err != nil {
		return hdr, ltx.Trailer{}, fmt.Errorf("%s: %w", key, err)
	}
	if copyTo != nil {
		// The decoder stops at the trailer; the copy holds what was read
		// ahead, which is the whole object unless it carries extra bytes.
		if err := ra.drain(); err != nil {
			return hdr, ltx.Trailer{}, fmt.Errorf("%s: %w", key, err)
		}
		if err := copyTo.Close(); err != nil {
			return hdr, ltx.Trailer{}, fmt.Errorf("keep %s: %w", key, err)
		}
		copySum.Sum(a.keep.sum[:0])
		a.keep.pages, a.keep.sized = pages, sized
		a.keep.done = true
	}
	a.next = &hdr
	return hdr, dec.Trailer(), nil
}

// teeReadCloser reads through a tee and closes the source.
type teeReadCloser struct {
	io.Reader
	io.Closer
}

const (
	// readAheadChunk is the unit in which a replica file is read ahead.
	readAheadChunk = 256 << 10
	// readAheadDepth is how many chunks may wait to be decoded.
	readAheadDepth = 8
)

// readAhead reads its source in a goroutine of its own, a few chunks ahead of
// the decoder, so that download and decryption run beside decoding and writing.
type readAhead struct {
	src    io.ReadCloser
	chunks chan readChunk
	free   chan []byte
	stop   chan struct{}
	done   chan struct{}

	buf []byte // the chunk being consumed
	cur []byte // its unread rest
	err error
}

type readChunk struct {
	b   []byte
	err error
}

func newReadAhead(src io.ReadCloser) *readAhead {
	ra := &readAhead{
		src:    src,
		chunks: make(chan readChunk, readAheadDepth),
		free:   make(chan []byte, readAheadDepth+2),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go ra.run()
	return ra
}

func (ra *readAhead) run() {
	defer close(ra.done)
	for {
		var b []byte
		select {
		case b = <-ra.free:
		default:
			b = make([]byte, readAheadChunk)
		}
		n, err := io.ReadFull(ra.src, b)
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		select {
		case ra.chunks <- readChunk{b: b[:n], err: err}:
		case <-ra.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// Read returns read-ahead bytes, then the source's error.
func (ra *readAhead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.err != nil {
			return 0, ra.err
		}
		if ra.buf != nil {
			select {
			case ra.free <- ra.buf[:cap(ra.buf)]:
			default:
			}
		}
		c := <-ra.chunks
		ra.buf, ra.cur, ra.err = c.b, c.b, c.err
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// Close closes the source, which ends a read in progress, and waits for the
// reading goroutine.
func (ra *readAhead) Close() error {
	close(ra.stop)
	err := ra.src.Close()
	<-ra.done
	return err
}

// drain reads the rest of the source, to its end.
func (ra *readAhead) drain() error {
	_, err := io.Copy(io.Discard, ra)
	return err
}
