package main

import "context"

// runBackup is `vwstream backup`: one snapshot now.
func runBackup(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("backup [flags]",
		"Take one snapshot now (consistent database copy, files, manifest), compress and\n"+
			"encrypt it, upload it to the target and every extra remote, verify and prune.")
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
	if err := cfg.RequireSnapshotEncryption(); err != nil {
		return err
	}
	_ = ctx
	return errNotYet
}
