package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/vault"
)

// runPromote is `vwstream promote`: secondary -> primary.
func runPromote(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("promote [--force] [flags]",
		"Turn the running secondary on this host into the primary: it takes the lease in\n"+
			"the bucket (waiting until the old primary's lease expires), pulls the replica a\n"+
			"last time and starts replicating. --force takes the lease at once: use it only\n"+
			"after making sure the old primary is gone, or two primaries will write.\n"+
			"The node is reached on STATUS_ADDR, with PROMOTE_TOKEN or else the token file the\n"+
			"node keeps in DATA_FOLDER (so run it as the node's user on its host).")
	force := c.Bool("force", false, "take the lease without waiting for it to expire")
	cfg, err := a.parseAndLoad(c, args, false)
	if err != nil {
		return err
	}
	if cfg.Health.StatusAddr == "" {
		return usageErrorf("promote: STATUS_ADDR is off; the running node cannot be reached")
	}
	token := cfg.Health.PromoteToken
	if token == "" {
		if token, err = status.ReadPromoteToken(filepath.Join(cfg.DataFolder, vault.PromoteTokenFile)); err != nil {
			return fmt.Errorf("%w (set PROMOTE_TOKEN, or run promote as the node's user on its host)", err)
		}
	}
	fmt.Fprintf(a.stderr, "promoting the node at %s (waiting for the lease if another primary holds it)\n", cfg.Health.StatusAddr)
	msg, err := status.Promote(ctx, cfg.Health.StatusAddr, token, *force)
	if err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	fmt.Fprintln(a.stdout, msg)
	return nil
}
