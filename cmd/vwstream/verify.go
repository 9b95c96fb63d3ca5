package main

import "context"

// runVerify is `vwstream verify`: a restore drill.
func runVerify(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("verify [flags]",
		"Restore the latest state into a temporary folder and check it: database integrity,\n"+
			"manifest, and that every attachment the database references is there.")
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
	_, _ = ctx, cfg
	return errNotYet
}
