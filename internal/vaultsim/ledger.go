package vaultsim

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The ledger: every transaction the workload commits inserts one row into
// Vaultwarden's own `event` table whose uuid encodes a sequence number,
// seqPrefix + 12 hex digits (a valid UUID that random v4 ids practically never
// take). The number is max(seq)+1 read inside the same immediate (write-locked)
// transaction, so sequence order is commit order and a database that is any
// prefix of the history holds exactly seqs 1..N. After COMMIT returns, the
// workload appends "seq unix_nanos\n" to a ledger file outside the data folder
// and fsyncs it. The schema therefore stays exactly Vaultwarden's.
const seqPrefix = "5e95e900-0000-4000-8000-"

// MaxWriters caps the workload's concurrent writing connections. A writer killed
// between COMMIT and its ledger append leaves one committed seq the ledger does
// not know, so Verify tolerates at most MaxWriters such seqs.
const MaxWriters = 4

// seqUUID returns the event uuid that carries seq.
func seqUUID(seq int64) string { return fmt.Sprintf("%s%012x", seqPrefix, seq) }

// parseSeqUUID returns the seq an event uuid carries, or false.
func parseSeqUUID(uuid string) (int64, bool) {
	h, ok := strings.CutPrefix(uuid, seqPrefix)
	if !ok || len(h) != 12 {
		return 0, false
	}
	n, err := strconv.ParseInt(h, 16, 64)
	return n, err == nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// maxSeq returns the highest seq in the database, 0 if none.
func maxSeq(ctx context.Context, q querier) (int64, error) {
	var uuid string
	err := q.QueryRowContext(ctx, `SELECT uuid FROM event WHERE uuid >= ? AND uuid <= ? ORDER BY uuid DESC LIMIT 1`,
		seqPrefix+"000000000000", seqPrefix+"ffffffffffff").Scan(&uuid)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("read max seq: %w", err)
	}
	seq, _ := parseSeqUUID(uuid)
	return seq, nil
}

// dbSeqs returns every seq in the database in ascending order.
func dbSeqs(ctx context.Context, q querier) ([]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT uuid FROM event WHERE uuid >= ? AND uuid <= ? ORDER BY uuid`,
		seqPrefix+"000000000000", seqPrefix+"ffffffffffff")
	if err != nil {
		return nil, fmt.Errorf("read seqs: %w", err)
	}
	defer rows.Close()
	var seqs []int64
	for rows.Next() {
		var uuid string
		if err := rows.Scan(&uuid); err != nil {
			return nil, fmt.Errorf("read seqs: %w", err)
		}
		if seq, ok := parseSeqUUID(uuid); ok {
			seqs = append(seqs, seq)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read seqs: %w", err)
	}
	return seqs, nil
}

// LedgerEntry is one line of a ledger file: seq was committed before At.
type LedgerEntry struct {
	Seq int64
	At  time.Time
}

// ReadLedger parses a ledger file. A last line without its newline (the writer
// was killed mid-append) is ignored; any other malformed line is an error.
func ReadLedger(path string) ([]LedgerEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	text := string(b)
	if i := strings.LastIndexByte(text, '\n'); i < len(text)-1 {
		text = text[:i+1]
	}
	var out []LedgerEntry
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			return nil, fmt.Errorf("read ledger: line %d: want \"seq unix_nanos\"", n)
		}
		seq, err1 := strconv.ParseInt(f[0], 10, 64)
		ns, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || seq < 1 {
			return nil, fmt.Errorf("read ledger: line %d: malformed", n)
		}
		out = append(out, LedgerEntry{Seq: seq, At: time.Unix(0, ns)})
	}
	return out, nil
}

// ledger appends entries to a ledger file, one fsync per entry.
type ledger struct {
	mu sync.Mutex
	f  *os.File
}

func openLedger(path string) (*ledger, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	return &ledger{f: f}, nil
}

func (l *ledger) append(seq int64, at time.Time) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := fmt.Fprintf(l.f, "%d %d\n", seq, at.UnixNano()); err != nil {
		return fmt.Errorf("append ledger: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("sync ledger: %w", err)
	}
	return nil
}

func (l *ledger) close() error {
	if l == nil {
		return nil
	}
	return l.f.Close()
}

// reconcileLedger makes the ledger at path agree with the database before a run:
// seqs a previous, killed run committed but never logged are appended (stamped
// now, which is after their commit), and a ledger ahead of the database is
// refused because new seqs would reuse its numbers.
func reconcileLedger(ctx context.Context, db *sql.DB, l *ledger, path string) error {
	var entries []LedgerEntry
	if _, err := os.Stat(path); err == nil {
		if entries, err = ReadLedger(path); err != nil {
			return err
		}
	}
	seqs, err := dbSeqs(ctx, db)
	if err != nil {
		return err
	}
	known := make(map[int64]bool, len(entries))
	var ledgerMax, dbMax int64
	for _, e := range entries {
		known[e.Seq] = true
		ledgerMax = max(ledgerMax, e.Seq)
	}
	if len(seqs) > 0 {
		dbMax = seqs[len(seqs)-1]
	}
	if ledgerMax > dbMax {
		return fmt.Errorf("ledger %s is ahead of the database (seq %d > %d): use a new ledger", path, ledgerMax, dbMax)
	}
	now := time.Now()
	for _, s := range seqs {
		if !known[s] {
			if err := l.append(s, now); err != nil {
				return err
			}
		}
	}
	return nil
}
