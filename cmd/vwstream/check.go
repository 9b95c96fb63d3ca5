package main

import "context"

// runCheck is `vwstream check`, the preflight. The lead replaces its body.
func runCheck(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("check [flags]",
		"Preflight: validate the configuration, probe the target with a write, read and\n"+
			"delete, check the encryption keys and the data folder. Exit 0 when all pass.")
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
	if err := cfg.RequireEncryption(); err != nil {
		return err
	}
	_ = ctx
	return errNotYet
}
