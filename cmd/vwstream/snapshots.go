package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vwstream/vwstream/internal/bucket"
	"github.com/vwstream/vwstream/internal/human"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/wiring"
)

// destinationList is one destination's snapshots in `snapshots --json`.
type destinationList struct {
	Name      string          `json:"name"`
	Store     string          `json:"store"`
	Snapshots []snapshot.Info `json:"snapshots"`
	Error     string          `json:"error,omitempty"`
}

// runSnapshots is `vwstream snapshots [--json]`.
func runSnapshots(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("snapshots [--json] [flags]", "List the snapshots of every destination, newest first.")
	asJSON := c.Bool("json", false, "print JSON instead of a table")
	cfg, err := a.parseAndLoad(c, args, false)
	if err != nil {
		return err
	}
	log := newLogger(cfg, a.stderr)
	namer, err := wiring.Namer(cfg)
	if err != nil {
		return err
	}
	plain, err := bucket.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	dests := wiring.Destinations(ctx, cfg, plain, log)
	// Archives whose upload failed, kept in BACKUP_FALLBACK_DIR until a run uploads them.
	if fb, err := wiring.FallbackStore(cfg); err != nil {
		return err
	} else if fb != nil {
		dests = append(dests, snapshot.Destination{Name: "local", Store: fb})
	}
	var (
		out  []destinationList
		errs []error
	)
	for _, d := range dests {
		dl := destinationList{Name: d.Name, Store: d.Store.String(), Snapshots: []snapshot.Info{}}
		infos, err := snapshot.List(ctx, d.Store, namer)
		if err != nil {
			dl.Error = err.Error()
			errs = append(errs, fmt.Errorf("%s: %w", d.Name, err))
		} else {
			dl.Snapshots = infos
		}
		out = append(out, dl)
	}
	if *asJSON {
		if err := printJSON(a.stdout, out); err != nil {
			return err
		}
		return errors.Join(errs...)
	}
	for _, dl := range out {
		fmt.Fprintf(a.stdout, "%s (%s)\n", dl.Name, dl.Store)
		if dl.Error != "" {
			fmt.Fprintf(a.stdout, "  error: %s\n", dl.Error)
			continue
		}
		if len(dl.Snapshots) == 0 {
			fmt.Fprintln(a.stdout, "  no snapshots")
		}
		for _, s := range dl.Snapshots {
			flag := ""
			if s.Degraded {
				flag = "  DEGRADED"
			}
			fmt.Fprintf(a.stdout, "  %-44s %s  %10s  %-4s%s\n", s.Name, s.Time.In(time.Local).Format(time.RFC3339), human.Bytes(s.Size), s.Encryption, flag)
		}
	}
	return errors.Join(errs...)
}
