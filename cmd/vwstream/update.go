package main

import (
	"context"
	"fmt"

	"github.com/vwstream/vwstream/internal/update"
	"github.com/vwstream/vwstream/internal/wiring"
)

// runUpdate is `vwstream update`: one pass of image updates.
func runUpdate(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("update [--dry-run] [--json] [flags]",
		"Check the images of the containers labelled vwstream.update=true (or\n"+
			"com.centurylinklabs.watchtower.enable=true) against their registry, one\n"+
			"request per image, and replace those whose tag moved: pull, stop, keep the\n"+
			"old container aside, start the new one with the same configuration, and put\n"+
			"the old one back when the new one is not healthy. UPDATE_MONITOR_ONLY and\n"+
			"--dry-run change nothing.")
	dry := c.Bool("dry-run", false, "list what would change (old and new digest and version), change nothing")
	asJSON := c.Bool("json", false, "print the result as JSON")
	cfg, err := a.parseAndLoad(c, args, false)
	if err != nil {
		return err
	}
	log := newLogger(cfg, a.stderr)
	n, err := wiring.Notifier(cfg, log)
	if err != nil {
		return err
	}
	o, err := wiring.UpdateOptions(ctx, cfg, n, log)
	if err != nil {
		return err
	}
	defer o.Docker.Close()
	o.DryRun = *dry
	rep, err := o.Run(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := printJSON(a.stdout, rep); err != nil {
			return err
		}
	} else {
		if len(rep.Items) == 0 {
			fmt.Fprintln(a.stdout, "no container to watch (label one vwstream.update=true)")
		}
		for _, it := range rep.Items {
			fmt.Fprintln(a.stdout, update.Describe(it))
		}
	}
	if f := rep.Failed(); f > 0 {
		return fmt.Errorf("%d of %d container(s) not updated; see above", f, len(rep.Items))
	}
	return nil
}
