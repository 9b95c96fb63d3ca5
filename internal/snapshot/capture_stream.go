package snapshot

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

// errNotWAL: the database is not in WAL mode, so it is copied instead.
var errNotWAL = errors.New("database not in WAL mode")

// dbStream is a WAL database's consistent state, read page by page into the
// archive from one read transaction, with no copy on disk.
//
// The transaction is opened at capture time and held until the pages are
// archived: in WAL mode a reader sees the state of the moment its transaction
// started however much is written or checkpointed meanwhile (a checkpoint
// never copies frames newer than the oldest reader's snapshot into the
// database file), and writers are never blocked by it. The pages come from
// SQLite's own pager through the sqlite_dbpage virtual table (modernc.org/sqlite
// is built with SQLITE_ENABLE_DBPAGE_VTAB), so the WAL lookup is SQLite's, not
// a copy of it. The image is the database file a checkpoint of that state
// would leave: page_count pages of page_size bytes, whose length the tar
// header states before the first page is read.
//
// Unlike the VACUUM INTO copy it replaces, the image is not compacted (free
// pages are archived as they are) and keeps Litestream's bookkeeping tables
// (_litestream_seq, _litestream_lock: a table each, harmless to a restored
// database, which Litestream reuses as it finds them).
type dbStream struct {
	db       *sql.DB
	tx       *sql.Tx
	pageSize int64
	pages    int64
	at       time.Time // when the transaction started, the entry's time
	// keep holds the transaction after the pages are archived once, for a
	// second pass (the fallback folder after a failed upload); the run
	// releases it.
	keep bool
	once sync.Once
	err  error
}

// pageHook, when set (by tests only), runs after each page is archived.
var pageHook func(pgno int64)

// openStream opens a read transaction on the database at path and reads the
// state's page size and count; errNotWAL when the database is not in WAL mode.
func openStream(ctx context.Context, path string) (s *dbStream, err error) {
	// mode=ro: the capture never writes. temp_store(2) keeps integrity_check's
	// sorting in memory, so nothing of the database lands in a temp file.
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)&_pragma=temp_store(2)")
	if err != nil {
		return nil, fmt.Errorf("capture database: %w", err)
	}
	db.SetMaxOpenConns(1)
	s = &dbStream{db: db}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.close())
		}
	}()
	// BeginTx's context rolls the transaction back when it ends: the run's.
	if s.tx, err = db.BeginTx(ctx, &sql.TxOptions{}); err != nil {
		return s, fmt.Errorf("capture database: %w", err)
	}
	s.at = time.Now()
	// A deferred transaction takes its snapshot at the first read: this one.
	var n int64
	if err := s.tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
		return s, fmt.Errorf("capture database: %w", err)
	}
	var page1 []byte
	if err := s.tx.QueryRowContext(ctx, "SELECT data FROM sqlite_dbpage WHERE pgno = 1").Scan(&page1); err != nil {
		return s, fmt.Errorf("capture database: read page 1: %w", err)
	}
	// Bytes 18 and 19 of the header are the write and read format versions:
	// 2 is WAL.
	if len(page1) < 100 || page1[18] != 2 || page1[19] != 2 {
		return s, errNotWAL
	}
	// SQLite reads such a database through its WAL (it creates an empty one
	// when there is none); a connection that could not would hold a lock
	// writers wait on.
	var mode string
	if err := s.tx.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return s, fmt.Errorf("capture database: %w", err)
	}
	if mode != "wal" {
		return s, errNotWAL
	}
	if err := s.tx.QueryRowContext(ctx, "PRAGMA page_size").Scan(&s.pageSize); err != nil {
		return s, fmt.Errorf("capture database: %w", err)
	}
	if err := s.tx.QueryRowContext(ctx, "PRAGMA page_count").Scan(&s.pages); err != nil {
		return s, fmt.Errorf("capture database: %w", err)
	}
	if s.pageSize != int64(len(page1)) || s.pages < 1 {
		return s, fmt.Errorf("capture database: page size %d, page 1 of %d bytes, %d pages", s.pageSize, len(page1), s.pages)
	}
	return s, nil
}

// size is the length of the database image.
func (s *dbStream) size() int64 { return s.pageSize * s.pages }

// writeTo archives the image as name: the header with its size, then every
// page in order. Page 1 is marked as a rollback-journal database (header bytes
// 18 and 19 set to 1), as VACUUM INTO's copies were: the archived file is
// complete without a WAL, and SQLite opens it read-only without creating one;
// Vaultwarden and Litestream switch it back to WAL when they open it.
func (s *dbStream) writeTo(ctx context.Context, tw *tar.Writer, name string) (File, error) {
	hdr := &tar.Header{Name: name, Mode: 0o600, Size: s.size(), ModTime: s.at.Truncate(time.Second),
		Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return File{}, err
	}
	rows, err := s.tx.QueryContext(ctx, "SELECT pgno, data FROM sqlite_dbpage")
	if err != nil {
		return File{}, fmt.Errorf("read pages: %w", err)
	}
	defer rows.Close()
	h := sha256.New()
	var next int64 = 1
	for rows.Next() {
		var pgno int64
		var data sql.RawBytes // the driver's copy of the page, valid until Next
		if err := rows.Scan(&pgno, &data); err != nil {
			return File{}, fmt.Errorf("read page %d: %w", next, err)
		}
		if pgno != next || int64(len(data)) != s.pageSize {
			return File{}, fmt.Errorf("read pages: got page %d of %d bytes, want page %d of %d", pgno, len(data), next, s.pageSize)
		}
		if pgno > s.pages {
			return File{}, fmt.Errorf("read pages: more than the %d the transaction counted", s.pages)
		}
		if pgno == 1 {
			p := make([]byte, len(data))
			copy(p, data)
			p[18], p[19] = 1, 1
			data = p
		}
		if _, err := tw.Write(data); err != nil {
			return File{}, err
		}
		h.Write(data)
		if pageHook != nil {
			pageHook(pgno)
		}
		next++
	}
	if err := rows.Err(); err != nil {
		return File{}, fmt.Errorf("read page %d: %w", next, err)
	}
	if next-1 != s.pages {
		return File{}, fmt.Errorf("read pages: %d pages, the transaction counted %d", next-1, s.pages)
	}
	return File{Path: name, Size: s.size(), SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// close ends the read transaction (so checkpoints may pass its state again)
// and closes the connection; later calls return the first call's error.
func (s *dbStream) close() error {
	s.once.Do(func() {
		if s.tx != nil {
			if err := s.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
				s.err = fmt.Errorf("end read transaction: %w", err)
			}
		}
		if err := s.db.Close(); err != nil {
			s.err = errors.Join(s.err, fmt.Errorf("close database: %w", err))
		}
	})
	return s.err
}
