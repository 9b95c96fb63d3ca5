// Package alert raises alerts before data is lost: a running node evaluates its
// rules on a ticker against the status board's document and a few facts of
// its host (free disk space, Vaultwarden's /alive). Each alert is a state with
// a start time and a severity; it notifies once when it starts, reminds at
// most every Repeat while it lasts, notifies once when it clears, shows in the
// status document (critical ones fail /readyz) and in the metric
// vwstream_alert_active.
package alert

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vwstream/vwstream/internal/notify"
	"github.com/vwstream/vwstream/internal/status"
)

// Defaults of the rules' thresholds (the configuration's defaults).
const (
	DefaultInterval         = 30 * time.Second
	DefaultRepeat           = 24 * time.Hour
	DefaultReplicationAfter = 30 * time.Minute
	DefaultUnhealthyAfter   = 5 * time.Minute
	DefaultDiskFreeMin      = 2_000_000_000
)

// Names of the alerts, the label of vwstream_alert_active.
const (
	ReplicationStalled = "replication_stalled"
	SnapshotFailed     = "snapshot_failed"
	SnapshotTooOld     = "snapshot_too_old"
	DiskLow            = "disk_low"
	ChildUnhealthy     = "child_unhealthy"
	DrillFailed        = "drill_failed"
	UpdateFailed       = "update_failed"
)

// Names lists every alert, in the order they are evaluated.
var Names = []string{ReplicationStalled, SnapshotFailed, SnapshotTooOld, DiskLow, ChildUnhealthy, DrillFailed, UpdateFailed}

// Options configure an Engine. A zero threshold turns its rule off.
type Options struct {
	Board    *status.Board   // where the document comes from and the alerts go
	Notifier notify.Notifier // nil: alerts are only logged
	Logger   *slog.Logger
	Clock    func() time.Time // time.Now when nil
	Interval time.Duration    // between evaluations; DefaultInterval when 0
	Repeat   time.Duration    // reminders at most this often; DefaultRepeat when 0

	// ReplicationAfter: changes pending this long without a successful sync.
	ReplicationAfter time.Duration
	// SnapshotMaxAge: the newest good snapshot older than this (BACKUP_MAX_AGE).
	SnapshotMaxAge time.Duration
	// DiskFreeMin: less free space than this on any of DiskPaths' file systems.
	DiskFreeMin int64
	DiskPaths   []string
	// FreeSpace reports the bytes available to vwstream on path's file
	// system; statfs when nil.
	FreeSpace func(path string) (int64, error)
	// Alive probes the supervised Vaultwarden (its /alive); nil turns the
	// child rule off. UnhealthyAfter is how long it must fail.
	Alive          func(ctx context.Context) error
	UnhealthyAfter time.Duration
}

// Engine evaluates the rules and keeps the alerts' states.
type Engine struct {
	o Options

	mu           sync.Mutex
	active       map[string]*state
	aliveFailing time.Time // when the child's probe began failing; zero while it passes
	aliveErr     string
}

// state is one active alert.
type state struct {
	status.Alert
	notified time.Time // last notification (start, reminder or escalation)
}

// finding is what a rule found: active with a severity and a message.
type finding struct {
	severity string
	message  string
}

// New makes an engine; Run evaluates it on its ticker.
func New(o Options) *Engine {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Repeat <= 0 {
		o.Repeat = DefaultRepeat
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FreeSpace == nil {
		o.FreeSpace = FreeSpace
	}
	return &Engine{o: o, active: map[string]*state{}}
}

// Run evaluates every Interval until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTicker(e.o.Interval)
	defer t.Stop()
	for {
		e.Evaluate(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Evaluate runs every rule once: it starts, reminds of, escalates and clears
// alerts, sends their notifications and puts the active ones on the board.
func (e *Engine) Evaluate(ctx context.Context) {
	e.probeChild(ctx)
	doc := e.o.Board.Snapshot()
	now := e.o.Clock()
	found := e.rules(ctx, &doc, now)

	e.mu.Lock()
	var events []notify.Event
	for _, name := range Names {
		f, on := found[name]
		st := e.active[name]
		switch {
		case on && st == nil:
			st = &state{Alert: status.Alert{Name: name, Severity: f.severity, Since: now.UTC().Truncate(time.Second), Message: f.message}, notified: now}
			e.active[name] = st
			events = append(events, event(st, false, false, now))
		case on:
			escalated := f.severity == status.SeverityCritical && st.Severity != status.SeverityCritical
			st.Severity, st.Message = f.severity, f.message
			if escalated || now.Sub(st.notified) >= e.o.Repeat {
				st.notified = now
				events = append(events, event(st, false, !escalated, now))
			}
		case st != nil:
			delete(e.active, name)
			events = append(events, event(st, true, false, now))
		}
	}
	list := e.list()
	e.mu.Unlock()

	e.o.Board.Update(func(s *status.Status) { s.Alerts = list })
	for _, ev := range events {
		e.send(ctx, ev)
	}
}

// Active lists the active alerts in the order of Names.
func (e *Engine) Active() []status.Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.list()
}

func (e *Engine) list() []status.Alert {
	var out []status.Alert
	for _, name := range Names {
		if st := e.active[name]; st != nil {
			out = append(out, st.Alert)
		}
	}
	return out
}

func event(st *state, cleared, reminder bool, now time.Time) notify.Event {
	ev := notify.Event{Kind: "alert", Name: st.Name, OK: cleared, Severity: st.Severity, Reminder: reminder, Time: now}
	if cleared {
		ev.Duration = now.Sub(st.Since).Round(time.Second)
	} else {
		ev.Error = st.Message
		if reminder {
			ev.Error += " (active since " + st.Since.Format(time.RFC3339) + ")"
		}
	}
	return ev
}

func (e *Engine) send(ctx context.Context, ev notify.Event) {
	what := "alert raised"
	switch {
	case ev.OK:
		what = "alert cleared"
	case ev.Reminder:
		what = "alert still active"
	}
	if ev.OK {
		e.o.Logger.Info(what, "alert", ev.Name, "severity", ev.Severity, "after", ev.Duration)
	} else {
		e.o.Logger.Warn(what, "alert", ev.Name, "severity", ev.Severity, "message", ev.Error)
	}
	if e.o.Notifier == nil {
		return
	}
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := e.o.Notifier.Notify(nctx, ev); err != nil {
		e.o.Logger.Warn("alert notification not sent", "alert", ev.Name, "error", err)
	}
}

var descActive = prometheus.NewDesc("vwstream_alert_active",
	"1 while the alert is active (see the status document's alerts for its severity), 0 otherwise.", []string{"alert"}, nil)

// Describe and Collect make the engine a Prometheus collector of
// vwstream_alert_active, one series per alert, 0 while it is not active.
func (e *Engine) Describe(ch chan<- *prometheus.Desc) { ch <- descActive }

// Collect reports every alert's state.
func (e *Engine) Collect(ch chan<- prometheus.Metric) {
	active := e.Active()
	for _, name := range Names {
		v := 0.0
		if slices.ContainsFunc(active, func(a status.Alert) bool { return a.Name == name }) {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, v, name)
	}
}
