package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/vwstream/vwstream/internal/status"
)

// runPromote is `vwstream promote`: secondary -> primary.
func runPromote(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("promote [--force] [flags]",
		"Turn the running secondary on this host into the primary: it takes the lease in\n"+
			"the bucket (waiting until the old primary's lease expires), pulls the replica a\n"+
			"last time and starts replicating. --force takes the lease at once: use it only\n"+
			"after making sure the old primary is gone, or two primaries will write.\n"+
			"The node is reached on STATUS_ADDR.")
	force := c.Bool("force", false, "take the lease without waiting for it to expire")
	cfg, err := a.parseAndLoad(c, args, false)
	if err != nil {
		return err
	}
	if cfg.Health.StatusAddr == "" {
		return usageErrorf("promote: STATUS_ADDR is off; the running node cannot be reached")
	}
	url := status.PromoteURL(cfg.Health.StatusAddr)
	if *force {
		url += "?force=true"
	}
	fmt.Fprintf(a.stderr, "promoting the node at %s (waiting for the lease if another primary holds it)\n", cfg.Health.StatusAddr)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("promote: no node answers on %s: %w", cfg.Health.StatusAddr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("promote: %s", msg)
	}
	fmt.Fprintln(a.stdout, msg)
	return nil
}
