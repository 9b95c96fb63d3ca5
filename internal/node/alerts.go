package node

import (
	"context"

	"github.com/vwstream/vwstream/internal/alert"
	"github.com/vwstream/vwstream/internal/notify"
	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/wiring"
)

// startAlerts evaluates the alert rules until ctx ends: thresholds from the
// configuration, the document from the board, notifications through the
// node's notifier, vwstream_alert_active in /metrics. With a supervised child
// its /alive is probed for the unhealthy rule.
func (n *Node) startAlerts(ctx context.Context) {
	o := wiring.AlertOptions(n.cfg)
	o.Board, o.Logger = n.board, n.log
	if n.notifier != nil { // a nil *Service must not become a non-nil Notifier
		o.Notifier = notify.Notifier(n.notifier)
	}
	if len(n.opt.Command) > 0 {
		url := status.AliveURL(n.cfg.Vaultwarden.RocketPort, n.cfg.Vaultwarden.RocketTLS, n.cfg.Vaultwarden.Domain)
		o.Alive = func(ctx context.Context) error { return status.CheckAlive(ctx, url) }
	}
	e := alert.New(o)
	if err := n.metrics.Registry().Register(e); err != nil {
		n.log.Warn("alert metrics not registered", "error", err)
	}
	go e.Run(ctx)
}
