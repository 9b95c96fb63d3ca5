package main

import "context"

// runPromote is `vwstream promote`: secondary -> primary.
func runPromote(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("promote [flags]",
		"Turn this secondary into the primary: take the lease in the bucket (refused while\n"+
			"another primary holds it), then start writing.")
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
