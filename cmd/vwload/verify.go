package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/vwstream/vwstream/internal/vaultsim"
)

func runVerify(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("verify")
	dir := fs.String("dir", "", "data folder holding db.sqlite3")
	ledger := fs.String("ledger", "", "ledger file written by vwload run")
	before := fs.String("before", "", "only require seqs committed before this time (RFC3339)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireDir(fs, *dir); err != nil {
		return err
	}
	if *ledger == "" {
		return fmt.Errorf("%w: verify: --ledger is required", errUsage)
	}
	var cutoff time.Time
	if *before != "" {
		t, err := time.Parse(time.RFC3339Nano, *before)
		if err != nil {
			return fmt.Errorf("%w: verify: --before: want RFC3339, got %q", errUsage, *before)
		}
		cutoff = t
	}
	r, err := vaultsim.Verify(filepath.Join(*dir, vaultsim.DBName), *ledger, cutoff)
	if err != nil && !errors.Is(err, vaultsim.ErrVerify) {
		return err // could not verify at all: no report to show
	}
	probs, aerr := vaultsim.CheckAttachments(*dir)
	if *asJSON {
		b, _ := json.Marshal(struct {
			vaultsim.Report
			Attachments []vaultsim.AttachmentProblem `json:"attachment_problems"`
		}{r, probs})
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintf(stdout, "integrity %s; %d seqs in db (max %d), ledger %d entries (max %d), required %d, missing %d, unledgered %d\n",
			r.Integrity, r.DBSeqs, r.DBMaxSeq, r.LedgerEntries, r.LedgerMaxSeq, r.Required, r.Missing, r.Unledgered)
		for _, p := range probs {
			fmt.Fprintf(stdout, "attachment %s: want %d bytes, have %d\n", p.Path, p.WantSize, p.GotSize)
		}
	}
	if err != nil {
		return err
	}
	return aerr
}
