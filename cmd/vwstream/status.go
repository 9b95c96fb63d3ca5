package main

import "context"

// runStatus is `vwstream status [--json]`.
func runStatus(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("status [--json] [flags]",
		"Show what the node is doing: role, lease, last sync, last snapshot, errors.\n"+
			"Asks the running daemon at STATUS_ADDR, or reads STATUS_FILE.")
	asJSON := c.Bool("json", false, "print JSON instead of text")
	if err := a.parse(c, args, true); err != nil {
		return err
	}
	if err := c.noArgs(); err != nil {
		return err
	}
	cfg, err := a.loadConfig(c, true)
	if err != nil {
		return err
	}
	_, _, _ = ctx, cfg, asJSON
	return errNotYet
}
