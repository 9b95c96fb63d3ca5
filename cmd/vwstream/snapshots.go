package main

import "context"

// runSnapshots is `vwstream snapshots [--json]`.
func runSnapshots(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("snapshots [--json] [flags]", "List the snapshots of every destination, newest first.")
	asJSON := c.Bool("json", false, "print JSON instead of a table")
	if err := a.parse(c, args, true); err != nil {
		return err
	}
	if err := c.noArgs(); err != nil {
		return err
	}
	cfg, err := a.loadConfig(c, false)
	if err != nil {
		return err
	}
	_, _, _ = ctx, cfg, asJSON
	return errNotYet
}
