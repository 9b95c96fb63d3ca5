package vaultsim_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/vaultsim"
)

func runWorkload(t *testing.T, v *vaultsim.Vault, opts vaultsim.WorkloadOptions) vaultsim.Stats {
	t.Helper()
	st, err := vaultsim.NewWorkload(v, opts).Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func ledgerLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

func TestWorkload_Run(t *testing.T) {
	v := createVault(t, vaultsim.Options{Seed: 3})
	ledger := filepath.Join(t.TempDir(), "ledger")
	st := runWorkload(t, v, vaultsim.WorkloadOptions{Rate: -1, Count: 300, Writers: 3, AttachmentRatio: 0.2,
		SendRatio: 0.1, Ledger: ledger, ChunkDelay: time.Microsecond})
	if st.Tx != 300 || st.FirstSeq != 1 || st.LastSeq != 300 {
		t.Fatalf("stats %+v; want 300 tx, seq 1-300", st)
	}
	if st.Attachments == 0 || st.Sends == 0 {
		t.Fatalf("stats %+v; want some attachments and sends", st)
	}
	if n := ledgerLines(t, ledger); n != 300 {
		t.Fatalf("ledger has %d lines, want 300", n)
	}
	r, err := vaultsim.Verify(v.DBPath(), ledger, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if r.DBSeqs != 300 || r.Required != 300 || r.Unledgered != 0 || r.Integrity != "ok" {
		t.Fatalf("report %+v", r)
	}
	// Every upload finished, so every attachment row has its whole file.
	probs, err := vaultsim.CheckAttachments(v.Dir)
	if err != nil || len(probs) != 0 {
		t.Fatalf("attachment problems %+v, %v", probs, err)
	}
	var rows int64
	v.DB.QueryRow(`SELECT count(*) FROM attachments`).Scan(&rows)
	if rows != 5+st.Attachments {
		t.Fatalf("%d attachment rows, want fixture's 5 + %d uploaded", rows, st.Attachments)
	}
}

func TestWorkload_RunContinuesLedger(t *testing.T) {
	v := createVault(t, vaultsim.Options{Seed: 4})
	ledger := filepath.Join(t.TempDir(), "ledger")
	runWorkload(t, v, vaultsim.WorkloadOptions{Rate: -1, Count: 40, Ledger: ledger})
	// A run killed after COMMIT but before its ledger append leaves a seq the
	// ledger lacks; the next run must log it rather than reuse the number.
	b, _ := os.ReadFile(ledger)
	lines := strings.SplitAfter(string(b), "\n")
	os.WriteFile(ledger, []byte(strings.Join(lines[:38], "")), 0o644)
	st := runWorkload(t, v, vaultsim.WorkloadOptions{Rate: -1, Count: 40, Ledger: ledger, Seed: 2})
	if st.FirstSeq != 41 || st.LastSeq != 80 {
		t.Fatalf("second run seqs %d-%d, want 41-80", st.FirstSeq, st.LastSeq)
	}
	if _, err := vaultsim.Verify(v.DBPath(), ledger, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n := ledgerLines(t, ledger); n != 80 {
		t.Fatalf("ledger has %d lines, want 80", n)
	}
}

func TestWorkload_RefusesLedgerAheadOfDatabase(t *testing.T) {
	v := createVault(t, vaultsim.Options{Seed: 5})
	ledger := filepath.Join(t.TempDir(), "ledger")
	os.WriteFile(ledger, []byte("1 1\n2 2\n"), 0o644)
	_, err := vaultsim.NewWorkload(v, vaultsim.WorkloadOptions{Count: 1, Ledger: ledger}).Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "ahead") {
		t.Fatalf("err = %v, want ledger ahead of the database", err)
	}
}

func TestWorkload_Rate(t *testing.T) {
	v := createVault(t, vaultsim.Options{Seed: 6})
	start := time.Now()
	st := runWorkload(t, v, vaultsim.WorkloadOptions{Rate: 100, Burst: 20, Count: 60})
	// 60 tx at 100/s in bursts of 20: bursts at 0, 0.2 s, 0.4 s.
	if el := time.Since(start); el < 350*time.Millisecond || el > 3*time.Second {
		t.Fatalf("60 tx at 100 tx/s took %s, want about 0.4 s", el)
	}
	if st.Tx != 60 {
		t.Fatalf("tx = %d, want 60", st.Tx)
	}
	st = runWorkload(t, v, vaultsim.WorkloadOptions{Rate: 50, Duration: 500 * time.Millisecond})
	if st.Tx < 10 || st.Tx > 30 {
		t.Fatalf("%d tx in 0.5 s at 50 tx/s, want about 25", st.Tx)
	}
}

func TestWorkload_StopsCleanlyOnCancel(t *testing.T) {
	v := createVault(t, vaultsim.Options{Seed: 8})
	ledger := filepath.Join(t.TempDir(), "ledger")
	ctx, cancel := contextWithCancel(t)
	time.AfterFunc(300*time.Millisecond, cancel)
	st, err := vaultsim.NewWorkload(v, vaultsim.WorkloadOptions{Rate: -1, Writers: 4, Ledger: ledger}).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := vaultsim.Verify(v.DBPath(), ledger, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// A graceful stop logs every committed transaction.
	if r.Unledgered != 0 || int64(r.DBSeqs) != st.Tx || st.Tx == 0 {
		t.Fatalf("after cancel: stats %+v, report %+v", st, r)
	}
}

func TestVerify_DetectsMissingCommittedSeq(t *testing.T) {
	v := createVault(t, vaultsim.Options{Seed: 9})
	ledger := filepath.Join(t.TempDir(), "ledger")
	runWorkload(t, v, vaultsim.WorkloadOptions{Rate: -1, Count: 50, Ledger: ledger})
	entries, err := vaultsim.ReadLedger(ledger)
	if err != nil {
		t.Fatal(err)
	}
	// Drop the last transaction's ledger row: the DB is now a prefix 1..49.
	if _, err := v.DB.Exec(`DELETE FROM event WHERE uuid = '5e95e900-0000-4000-8000-000000000032'`); err != nil {
		t.Fatal(err)
	}
	r, err := vaultsim.Verify(v.DBPath(), ledger, time.Time{})
	if !errors.Is(err, vaultsim.ErrVerify) {
		t.Fatalf("err = %v, want ErrVerify", err)
	}
	if r.Missing != 1 || r.FirstMissing != 50 || r.FirstHole != 0 {
		t.Fatalf("report %+v; want seq 50 missing and no hole", r)
	}
	// A point-in-time restore from before seq 50 committed is complete.
	var cutoff time.Time
	for _, e := range entries {
		if e.Seq == 50 {
			cutoff = e.At
		}
	}
	if r, err := vaultsim.Verify(v.DBPath(), ledger, cutoff); err != nil || r.Required != 49 {
		t.Fatalf("before seq 50: report %+v, err %v; want 49 required and no error", r, err)
	}
}

func TestVerify_DetectsHole(t *testing.T) {
	v := createVault(t, vaultsim.Options{Seed: 10})
	ledger := filepath.Join(t.TempDir(), "ledger")
	runWorkload(t, v, vaultsim.WorkloadOptions{Rate: -1, Count: 30, Ledger: ledger})
	if _, err := v.DB.Exec(`DELETE FROM event WHERE uuid = '5e95e900-0000-4000-8000-000000000014'`); err != nil {
		t.Fatal(err)
	}
	r, err := vaultsim.Verify(v.DBPath(), ledger, time.Time{})
	if !errors.Is(err, vaultsim.ErrVerify) || r.FirstHole != 20 || r.FirstMissing != 20 {
		t.Fatalf("report %+v, err %v; want a hole at 20", r, err)
	}
}

func TestVerify_DetectsNeverCommittedSeqs(t *testing.T) {
	v := createVault(t, vaultsim.Options{Seed: 11})
	ledger := filepath.Join(t.TempDir(), "ledger")
	runWorkload(t, v, vaultsim.WorkloadOptions{Rate: -1, Count: 30, Ledger: ledger})
	b, _ := os.ReadFile(ledger)
	lines := strings.SplitAfter(string(b), "\n")

	// Up to MaxWriters seqs past the ledger (killed before the append) are fine,
	// and so is a torn last line.
	short := strings.Join(lines[:30-vaultsim.MaxWriters], "") + "27 17"
	os.WriteFile(ledger, []byte(short), 0o644)
	if r, err := vaultsim.Verify(v.DBPath(), ledger, time.Time{}); err != nil || r.Unledgered != vaultsim.MaxWriters {
		t.Fatalf("report %+v, err %v; want %d unledgered tolerated", r, err, vaultsim.MaxWriters)
	}
	os.WriteFile(ledger, []byte(strings.Join(lines[:30-vaultsim.MaxWriters-1], "")), 0o644)
	if _, err := vaultsim.Verify(v.DBPath(), ledger, time.Time{}); !errors.Is(err, vaultsim.ErrVerify) {
		t.Fatalf("err = %v, want ErrVerify for %d unledgered seqs", err, vaultsim.MaxWriters+1)
	}
}

func TestVerify_DetectsCorruption(t *testing.T) {
	v := createVault(t, vaultsim.Options{Seed: 12, Ciphers: 400})
	ledger := filepath.Join(t.TempDir(), "ledger")
	runWorkload(t, v, vaultsim.WorkloadOptions{Rate: -1, Count: 5, Ledger: ledger})
	v.Close()
	f, err := os.OpenFile(v.DBPath(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	// Overwrite pages in the middle of the file (not the header) with garbage.
	garbage := make([]byte, 8192)
	for i := range garbage {
		garbage[i] = byte(i*7 + 3)
	}
	f.WriteAt(garbage, fi.Size()/2/4096*4096)
	f.Close()
	if _, err := vaultsim.Verify(v.DBPath(), ledger, time.Time{}); err == nil {
		t.Fatal("Verify passed a corrupted database")
	}
}
