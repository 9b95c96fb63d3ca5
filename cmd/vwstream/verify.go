package main

import (
	"context"
	"fmt"
	"time"

	"github.com/vwstream/vwstream/internal/bucket"
	"github.com/vwstream/vwstream/internal/human"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/wiring"
)

// runVerify is `vwstream verify`: a restore drill.
func runVerify(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("verify [--snapshot NAME|latest] [--json] [flags]",
		"Restore drill: unpack a snapshot of the target (the latest by default) into a\n"+
			"temporary folder and check it: every file against the manifest, database\n"+
			"integrity, and that every attachment the database references is there.")
	name := c.String("snapshot", "latest", "check this snapshot `NAME` of the target")
	asJSON := c.Bool("json", false, "print the result as JSON")
	cfg, err := a.parseAndLoad(c, args, false)
	if err != nil {
		return err
	}
	log := newLogger(cfg, a.stderr)
	namer, err := wiring.Namer(cfg)
	if err != nil {
		return err
	}
	store, err := bucket.Open(ctx, cfg, log) // the drill reads the target only, not the extra remotes
	if err != nil {
		return err
	}
	res, err := snapshot.Restore(ctx, snapshot.RestoreOptions{Store: store, Namer: namer, Name: *name,
		DryRun: true, Keys: wiring.SnapshotKeys(cfg), Logger: log})
	if err != nil {
		return err
	}
	if *asJSON {
		if err := printJSON(a.stdout, res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.stdout, "%s: %d files, %s, integrity %s, taken %s, checked in %s\n", res.Name, res.Files,
			human.Bytes(res.Bytes), res.Integrity, res.CapturedAt.Format(time.RFC3339), res.Duration.Round(time.Millisecond))
	}
	if res.MissingAttachments > 0 {
		return fmt.Errorf("%s: %d attachment row(s) without their file (snapshot degraded: %t)", res.Name, res.MissingAttachments, res.Degraded)
	}
	return nil
}
