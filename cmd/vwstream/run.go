package main

import "context"

// runRun is `vwstream run [-- COMMAND ARGS...]`, the daemon.
func runRun(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("run [flags] [-- COMMAND ARGS...]",
		"Run the daemon: restore an empty data folder, replicate the database, sync files,\n"+
			"take scheduled snapshots and serve status. With a command after --, start it\n"+
			"(Vaultwarden, e.g. -- /start.sh) once the data is in place and stop it first on shutdown.")
	if err := a.parse(c, args, true); err != nil {
		return err
	}
	child := c.Args() // after "--": the supervised command
	cfg, err := a.loadConfig(c, false)
	if err != nil {
		return err
	}
	if err := cfg.RequireEncryption(); err != nil {
		return err
	}
	_, _ = ctx, child
	return errNotYet
}
