package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/vwstream/vwstream/internal/bucket"
	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/preflight"
)

// errChecksFailed ends check with exit 1 after the checklist was printed.
var errChecksFailed = errors.New("checks failed")

// runCheck is `vwstream check`, the preflight.
func runCheck(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("check [--json] [flags]",
		"Preflight: validate the configuration, check the data folder and the database\n"+
			"file, probe the target (write, read back, conditional writes as the lease\n"+
			"uses them, delete), and check that the passphrase opens the bucket key (or\n"+
			"that ENCRYPTION_KEY is it). Prints a checklist; exit 0 when all pass, 1 when\n"+
			"a check fails, 2 when the configuration is wrong (a remote target without\n"+
			"encryption is refused before any check).")
	asJSON := c.Bool("json", false, "print the checklist as JSON")
	cfg, err := a.parseAndLoad(c, args, false)
	if err != nil {
		return err
	}
	if err := cfg.CheckHost(config.OSHost{}); err != nil {
		return err
	}
	if err := cfg.RequireEncryption(); err != nil {
		return err
	}
	// Retries are reported by the checklist, not as log lines.
	log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	store, err := bucket.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	report := preflight.Run(ctx, cfg, store)
	if *asJSON {
		if err := printJSON(a.stdout, report); err != nil {
			return err
		}
	} else {
		for _, it := range report.Items {
			mark := "ok  "
			if !it.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(a.stdout, "%s  %-13s %s\n", mark, it.Name, oneLine(it.Detail))
		}
	}
	if !report.OK {
		return &exitCodeError{err: errChecksFailed, code: exitFailure}
	}
	if !*asJSON {
		fmt.Fprintln(a.stdout, "all checks passed")
	}
	return nil
}
