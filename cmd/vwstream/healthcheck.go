package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vwstream/vwstream/internal/alert"
	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/wiring"
)

// runHealthcheck is `vwstream healthcheck`, for Docker's HEALTHCHECK. Docker reserves
// exit code 2, so every failure here, configuration included, exits 1. It is quiet
// when healthy (it runs every 30 s) and prints one line per failed check otherwise.
func runHealthcheck(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("healthcheck [--no-vaultwarden] [--timeout DURATION] [flags]",
		"Exit 0 when the node is healthy, 1 when not (Docker HEALTHCHECK; exit 2 is reserved\n"+
			"by Docker, so a bad configuration exits 1 here). Unhealthy: Vaultwarden's /alive\n"+
			"(ROCKET_PORT on 127.0.0.1, DOMAIN's path, https when ROCKET_TLS is set) does not\n"+
			"answer 2xx; no status from STATUS_ADDR or STATUS_FILE, or a status older than 60s;\n"+
			"replication lag or last file sync older than HEALTHCHECK_MAX_SYNC_AGE; with\n"+
			"BACKUP_ENABLED, newest snapshot older than BACKUP_MAX_AGE; the lease lost.\n"+
			"Prints nothing when healthy. In a sidecar setup where Vaultwarden does not share\n"+
			"this network namespace, pass --no-vaultwarden.")
	noVW := c.Bool("no-vaultwarden", false, "do not probe Vaultwarden's /alive nor count its child_unhealthy alert (sidecar)")
	timeout := c.Duration("timeout", 5*time.Second, "time allowed for all checks together")
	cfg, err := a.parseAndLoad(c, args, true)
	if err != nil { // Docker reserves exit code 2: bad configuration is "unhealthy"
		return &exitCodeError{err: err, code: exitFailure}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	// Both checks run at once so a hanging Vaultwarden cannot starve the status read.
	var (
		wg       sync.WaitGroup
		aliveErr error
	)
	if !*noVW {
		wg.Go(func() {
			aliveErr = status.CheckAlive(ctx, status.AliveURL(cfg.Vaultwarden.RocketPort, cfg.Vaultwarden.RocketTLS, cfg.Vaultwarden.Domain))
		})
	}
	var problems []string
	doc, _, err := status.Load(ctx, cfg.Health.StatusAddr, cfg.Health.StatusFile)
	if err != nil {
		problems = append(problems, err.Error())
	} else {
		limits := wiring.StatusLimits(cfg)
		if *noVW { // nor its alert (VAULTWARDEN_ALIVE_URL): the sidecar is healthy on its own
			limits.SkipAlerts = []string{alert.ChildUnhealthy}
		}
		problems = append(problems, doc.Problems(limits, time.Now())...)
	}
	wg.Wait()
	if aliveErr != nil {
		problems = append([]string{aliveErr.Error()}, problems...)
	}
	if len(problems) == 0 {
		return nil
	}
	for _, p := range problems {
		fmt.Fprintf(a.stderr, "vwstream healthcheck: %s\n", oneLine(p))
	}
	return errUnhealthy
}
