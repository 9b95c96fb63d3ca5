package main

import (
	"context"
	"fmt"
	"time"

	"github.com/vwstream/vwstream/internal/bucket"
	"github.com/vwstream/vwstream/internal/drill"
	"github.com/vwstream/vwstream/internal/human"
	"github.com/vwstream/vwstream/internal/wiring"
)

// runDrill is `vwstream drill`: one restore drill now.
func runDrill(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("drill [--json] [flags]",
		"Restore drill: restore the latest replica state and the latest snapshot into\n"+
			"temporary folders, check the database's integrity, the attachment references and\n"+
			"that the restored transaction is the replica's newest, report how long it took\n"+
			"and remove the folders. Refused when the temp folder could not hold the restore.")
	asJSON := c.Bool("json", false, "print the result as JSON")
	cfg, err := a.parseAndLoad(c, args, false)
	if err != nil {
		return err
	}
	log := newLogger(cfg, a.stderr)
	notifier, err := wiring.Notifier(cfg, log)
	if err != nil {
		return err
	}
	plain, err := bucket.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	data, err := bucket.Data(ctx, plain, cfg, bucket.ReadKey)
	if err != nil {
		return err
	}
	opts, err := wiring.DrillOptions(cfg, data, plain)
	if err != nil {
		return err
	}
	opts.Notifier, opts.Pinger, opts.Logger = notifier, wiring.Pinger(cfg, log), log
	res, runErr := drill.Run(ctx, opts)
	if *asJSON {
		if err := printJSON(a.stdout, res); err != nil {
			return err
		}
		return runErr
	}
	if r := res.Replica; r != nil && runErr == nil {
		fmt.Fprintf(a.stdout, "replica   transaction %d (the replica's newest), %d files, restored and checked in %s\n",
			r.TXID, r.Files, r.Duration.Round(time.Millisecond))
	}
	if r := res.Replica; r != nil && runErr == nil && r.UnfinishedAttachments > 0 {
		fmt.Fprintf(a.stdout, "          %d attachment row(s) without their file, in the data folder too: an upload in progress or never finished\n",
			r.UnfinishedAttachments)
	}
	if s := res.Snapshot; s != nil && runErr == nil {
		fmt.Fprintf(a.stdout, "snapshot  %s: %d files, %s, integrity %s, checked in %s\n",
			s.Name, s.Files, human.Bytes(s.Bytes), s.Integrity, s.Duration.Round(time.Millisecond))
		if s.Degraded {
			fmt.Fprintf(a.stdout, "          degraded when taken: %d attachment row(s) without their file, restored as recorded\n", s.MissingAttachments)
		}
	}
	if runErr == nil {
		fmt.Fprintf(a.stdout, "drill passed in %s\n", res.Duration.Round(time.Millisecond))
	}
	return runErr
}
