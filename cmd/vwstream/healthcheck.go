package main

import "context"

// runHealthcheck is `vwstream healthcheck`, for Docker's HEALTHCHECK. Docker reserves
// exit code 2, so every failure here, configuration included, exits 1.
func runHealthcheck(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("healthcheck [flags]",
		"Exit 0 when the node is healthy, 1 when not (Docker HEALTHCHECK; exit 2 is reserved\n"+
			"by Docker, so a bad configuration exits 1 here). Unhealthy: last sync older than\n"+
			"HEALTHCHECK_MAX_SYNC_AGE, or, with BACKUP_ENABLED, newest snapshot older than BACKUP_MAX_AGE.")
	if err := a.parse(c, args, true); err != nil {
		return &exitCodeError{err: err, code: exitFailure}
	}
	if err := c.noArgs(); err != nil {
		return &exitCodeError{err: err, code: exitFailure}
	}
	cfg, err := a.loadConfig(c, true)
	if err != nil {
		return &exitCodeError{err: err, code: exitFailure}
	}
	_, _ = ctx, cfg
	return errNotYet
}
