package vaultsim

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/vwstream/vwstream/internal/vault"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrVerify is wrapped by Verify's error when the database fails a check (as
// opposed to Verify being unable to run).
var ErrVerify = errors.New("verification failed")

// Report is what Verify found.
type Report struct {
	Integrity     string   `json:"integrity"`      // PRAGMA integrity_check's answer, "ok" when sound
	DBSeqs        int      `json:"db_seqs"`        // ledger seqs present in the database
	DBMaxSeq      int64    `json:"db_max_seq"`     // highest of them
	LedgerEntries int      `json:"ledger_entries"` // complete lines in the ledger file
	LedgerMaxSeq  int64    `json:"ledger_max_seq"`
	Required      int      `json:"required"`      // ledger entries committed before the cutoff
	Missing       int      `json:"missing"`       // required entries absent from the database
	FirstMissing  int64    `json:"first_missing"` // lowest of them, 0 if none
	FirstHole     int64    `json:"first_hole"`    // lowest seq absent below DBMaxSeq, 0 if none
	Unledgered    int      `json:"unledgered"`    // seqs in the database the ledger lacks
	Problems      []string `json:"problems,omitempty"`
}

// OK reports whether every check passed.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// Verify checks a database (typically a restored copy) against the workload's
// ledger:
//   - PRAGMA integrity_check says ok;
//   - every seq the ledger stamps before committedBefore is in the database (a
//     zero committedBefore requires every ledger entry);
//   - the database's seqs are exactly 1..max, no holes: a restore is a prefix;
//   - nothing that was never committed appears: at most MaxWriters seqs may be
//     missing from the ledger (writers killed between COMMIT and their ledger
//     append), and none beyond the ledger's max + MaxWriters.
//
// The error wraps ErrVerify when a check fails; the report is filled either way.
func Verify(dbPath, ledgerPath string, committedBefore time.Time) (Report, error) {
	var r Report
	if _, err := os.Stat(dbPath); err != nil {
		return r, fmt.Errorf("verify: %w", err)
	}
	entries, err := ReadLedger(ledgerPath)
	if err != nil {
		return r, fmt.Errorf("verify: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return r, fmt.Errorf("verify: %w", err)
	}
	defer db.Close()
	ctx := context.Background()
	if r.Integrity, err = integrityCheck(ctx, db); err != nil {
		return r, fmt.Errorf("verify: %w", err)
	}
	if r.Integrity != "ok" {
		r.Problems = append(r.Problems, "integrity_check: "+r.Integrity)
	}
	seqs, err := dbSeqs(ctx, db)
	if err != nil {
		return r, fmt.Errorf("verify: %w", err)
	}
	inDB := make(map[int64]bool, len(seqs))
	for _, s := range seqs {
		inDB[s] = true
	}
	r.DBSeqs = len(seqs)
	if len(seqs) > 0 {
		r.DBMaxSeq = seqs[len(seqs)-1]
	}
	for i, s := range seqs {
		if s != int64(i+1) {
			r.FirstHole = int64(i + 1)
			r.Problems = append(r.Problems, fmt.Sprintf("hole: seq %d absent below max %d", r.FirstHole, r.DBMaxSeq))
			break
		}
	}

	inLedger := make(map[int64]bool, len(entries))
	r.LedgerEntries = len(entries)
	for _, e := range entries {
		inLedger[e.Seq] = true
		r.LedgerMaxSeq = max(r.LedgerMaxSeq, e.Seq)
		if !committedBefore.IsZero() && !e.At.Before(committedBefore) {
			continue
		}
		r.Required++
		if !inDB[e.Seq] {
			r.Missing++
			if r.FirstMissing == 0 || e.Seq < r.FirstMissing {
				r.FirstMissing = e.Seq
			}
		}
	}
	if r.Missing > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d committed seqs missing, first %d", r.Missing, r.FirstMissing))
	}
	for _, s := range seqs {
		if !inLedger[s] {
			r.Unledgered++
		}
	}
	if r.Unledgered > MaxWriters || r.DBMaxSeq > r.LedgerMaxSeq+MaxWriters {
		r.Problems = append(r.Problems, fmt.Sprintf("%d seqs not in the ledger (max %d, ledger max %d, allowance %d): never committed",
			r.Unledgered, r.DBMaxSeq, r.LedgerMaxSeq, MaxWriters))
	}
	if !r.OK() {
		return r, fmt.Errorf("verify %s: %w: %s", dbPath, ErrVerify, strings.Join(r.Problems, "; "))
	}
	return r, nil
}

func integrityCheck(ctx context.Context, db *sql.DB) (string, error) {
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return "", fmt.Errorf("integrity check: %w", err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return "", fmt.Errorf("integrity check: %w", err)
		}
		lines = append(lines, s)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("integrity check: %w", err)
	}
	return strings.Join(lines, "; "), nil
}

// AttachmentProblem is an attachments row whose file is missing or has the wrong size.
type AttachmentProblem struct {
	CipherUUID string `json:"cipher_uuid"`
	ID         string `json:"id"`
	Path       string `json:"path"`      // relative to the data folder
	WantSize   int64  `json:"want_size"` // attachments.file_size
	GotSize    int64  `json:"got_size"`  // -1 when the file is missing
}

// CheckAttachments lists the attachment rows of the vault in dir whose file under
// attachments/ is missing or differs in size from file_size. Vaultwarden writes the
// row before the file, so a snapshot taken mid-upload can legitimately show one.
func CheckAttachments(dir string) ([]AttachmentProblem, error) {
	missing, err := vault.MissingAttachments(filepath.Join(dir, DBName), filepath.Join(dir, AttachmentsDir))
	if err != nil {
		return nil, err
	}
	out := make([]AttachmentProblem, 0, len(missing))
	for _, m := range missing {
		out = append(out, AttachmentProblem{CipherUUID: m.CipherUUID, ID: m.ID,
			Path: filepath.Join(AttachmentsDir, m.CipherUUID, m.ID), WantSize: m.WantSize, GotSize: m.GotSize})
	}
	return out, nil
}
