package node

import (
	"context"
	"time"

	"github.com/vwstream/vwstream/internal/alert"
	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/drill"
	"github.com/vwstream/vwstream/internal/notify"
	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/wiring"
)

// startChecks starts what watches the node's protection once it runs, until
// ctx ends: the alert rules and, with DRILL_CRON, restore drills.
func (n *Node) startChecks(ctx context.Context) {
	n.startDrills(ctx, n.startAlerts(ctx))
}

// notifier is the node's notifier as an interface, nil without one (a nil
// *Service must not become a non-nil Notifier).
func (n *Node) notifierOrNil() notify.Notifier {
	if n.notifier == nil {
		return nil
	}
	return n.notifier
}

// startAlerts evaluates the alert rules until ctx ends: thresholds from the
// configuration, the document from the board, notifications through the
// node's notifier, vwstream_alert_active in /metrics. The unhealthy rule
// probes a supervised child's /alive on the loopback, or in sidecar mode
// VAULTWARDEN_ALIVE_URL when it is set.
func (n *Node) startAlerts(ctx context.Context) *alert.Engine {
	o := wiring.AlertOptions(n.cfg)
	o.Board, o.Logger, o.Notifier = n.board, n.log, n.notifierOrNil()
	url := n.cfg.Alert.AliveURL
	if len(n.opt.Command) > 0 {
		url = status.AliveURL(n.cfg.Vaultwarden.RocketPort, n.cfg.Vaultwarden.RocketTLS, n.cfg.Vaultwarden.Domain)
	}
	if url != "" {
		o.Alive = func(ctx context.Context) error { return status.CheckAlive(ctx, url) }
	}
	e := alert.New(o)
	if err := n.metrics.Registry().Register(e); err != nil {
		n.log.Warn("alert metrics not registered", "error", err)
	}
	go e.Run(ctx)
	return e
}

// startDrills runs a restore drill at every DRILL_CRON time on a primary
// (a secondary's drills would only repeat its primary's) and records each in
// the status document, whose drill_failed alert (evaluated at once) and
// metrics follow it.
func (n *Node) startDrills(ctx context.Context, alerts *alert.Engine) {
	sched := n.cfg.Backup.DrillSchedule
	if sched == nil {
		return
	}
	go func() {
		for {
			t := time.NewTimer(time.Until(sched.Next(time.Now())))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if n.stopping.Load() || n.currentRole() != config.RolePrimary {
				continue
			}
			n.runDrill(ctx)
			alerts.Evaluate(ctx)
		}
	}()
}

// runDrill runs one drill against the node's own stores.
func (n *Node) runDrill(ctx context.Context) {
	n.secondary.pullMu.Lock() // a promote sets n.data under it
	data := n.data
	n.secondary.pullMu.Unlock()
	o, err := wiring.DrillOptions(n.cfg, data, n.plain)
	if err != nil {
		n.log.Error("restore drill not started", "error", err)
		return
	}
	o.Notifier, o.Pinger, o.Logger = n.notifierOrNil(), wiring.Pinger(n.cfg, n.log), n.log
	o.Flush = func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, flushTimeout)
		defer cancel()
		return n.flushFiles(ctx)
	}
	n.log.Info("restore drill starting")
	res, err := drill.Run(ctx, o)
	if err != nil {
		n.log.Error("restore drill failed", "error", err, "duration", res.Duration)
	} else {
		n.log.Info("restore drill passed", "duration", res.Duration)
	}
	n.board.Update(func(s *status.Status) {
		d := &status.Drill{LastTime: time.Now(), LastDuration: res.Seconds, LastResult: status.ResultOK}
		if s.Drill != nil {
			d.LastSuccess = s.Drill.LastSuccess
		}
		if err != nil {
			d.LastResult, d.LastError = status.ResultError, err.Error()
		} else {
			d.LastSuccess = d.LastTime
		}
		s.Drill = d
	})
}
