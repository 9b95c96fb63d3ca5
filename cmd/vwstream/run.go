package main

import (
	"context"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/node"
)

// runRun is `vwstream run [-- COMMAND ARGS...]`, the daemon.
func runRun(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("run [flags] [-- COMMAND ARGS...]",
		"Run the daemon: restore an empty data folder, replicate the database, sync files,\n"+
			"take scheduled snapshots and serve status. With a command after --, start it\n"+
			"(Vaultwarden, e.g. -- /start.sh) once the data is in place and stop it first on\n"+
			"shutdown; the exit code is then the child's, or 1 when a final flush failed.")
	if err := a.parse(c, args, true); err != nil {
		return err
	}
	cfg, err := a.loadConfig(c, false)
	if err != nil {
		return err
	}
	if err := cfg.CheckHost(config.OSHost{}); err != nil {
		return err
	}
	if err := cfg.RequireEncryption(); err != nil {
		return err
	}
	ver, _ := buildVersion()
	err = node.Run(ctx, node.Options{
		Version: ver,
		Config:  cfg,
		Command: c.Args(),                         // after "--": the supervised command
		Env:     config.WithoutSecrets(a.environ), // Vaultwarden needs none of ours
		Stdout:  a.stdout,
		Stderr:  a.stderr,
		Logger:  newLogger(cfg, a.stderr),
	})
	if ce, ok := err.(*node.ChildExitError); ok && ce.Code > 0 {
		// The child failed and every flush succeeded: pass its code on.
		return &exitCodeError{err: err, code: ce.Code}
	}
	return err
}
