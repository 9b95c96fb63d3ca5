package alert_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vwstream/vwstream/internal/alert"
	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/notify"
	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/testenv"
)

// clock is a settable time for the engine and the board.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type message = testenv.Notification

// webhook is a notifier at the default level (warning) posting to a loopback
// webhook, and what the webhook received.
func webhook(t *testing.T) (notify.Notifier, chan message) {
	t.Helper()
	u, got := testenv.Webhook(t)
	n, err := notify.New(notify.Options{URLs: []string{u}})
	if err != nil {
		t.Fatal(err)
	}
	return n, got
}

// expect waits for one notification whose title holds want.
func expect(t *testing.T, got chan message, want string) message {
	t.Helper()
	select {
	case m := <-got:
		if !strings.Contains(m.Title, want) {
			t.Fatalf("notification %q / %q; want a title with %q", m.Title, m.Message, want)
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("no notification %q arrived", want)
	}
	return message{}
}

// none checks that no notification arrived (they are sent synchronously by
// Evaluate, so one would be waiting already).
func none(t *testing.T, got chan message, when string) {
	t.Helper()
	select {
	case m := <-got:
		t.Fatalf("%s: unexpected notification %q / %q", when, m.Title, m.Message)
	default:
	}
}

func active(t *testing.T, e *alert.Engine, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(e)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == name {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no vwstream_alert_active{alert=%q}", name)
	return 0
}

// A snapshot older than BACKUP_MAX_AGE (by the injected clock) raises a
// warning: notified once, not again within ALERT_REPEAT, reminded after it,
// cleared with one notification when a snapshot succeeds. A warning shows in
// the status document and the metric but does not fail readiness.
func TestEngine_SnapshotTooOld(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	board := status.NewBoard(status.Options{Role: config.RolePrimary, Clock: clk.Now})
	board.Update(func(s *status.Status) {
		s.Status = status.StateOK
		s.Snapshot = &status.Snapshot{LastResult: status.ResultOK, LastSuccess: clk.Now()}
	})
	n, got := webhook(t)
	e := alert.New(alert.Options{Board: board, Notifier: n, Clock: clk.Now, SnapshotMaxAge: 48 * time.Hour, Repeat: 24 * time.Hour})
	ctx := t.Context()

	clk.Add(47 * time.Hour)
	e.Evaluate(ctx)
	none(t, got, "47h after the snapshot")
	clk.Add(2 * time.Hour)
	e.Evaluate(ctx)
	m := expect(t, got, "vwstream alert snapshot_too_old: warning")
	if !strings.Contains(m.Message, "49h") || !strings.Contains(m.Message, "BACKUP_MAX_AGE=48h") {
		t.Errorf("message %q lacks the age and the limit", m.Message)
	}
	if v := active(t, e, alert.SnapshotTooOld); v != 1 {
		t.Errorf("vwstream_alert_active{alert=snapshot_too_old} = %v, want 1", v)
	}
	doc := board.Snapshot()
	if len(doc.Alerts) != 1 || doc.Alerts[0].Name != alert.SnapshotTooOld || doc.Alerts[0].Severity != status.SeverityWarning {
		t.Errorf("status alerts = %+v", doc.Alerts)
	}
	for _, p := range doc.Problems(status.Limits{}, clk.Now()) {
		if strings.Contains(p, "alert") {
			t.Errorf("a warning alert is a health problem: %q", p)
		}
	}

	for range 5 { // within ALERT_REPEAT: silence
		clk.Add(4 * time.Hour)
		e.Evaluate(ctx)
	}
	none(t, got, "within ALERT_REPEAT")
	clk.Add(4 * time.Hour) // 24 h after the first notification
	e.Evaluate(ctx)
	expect(t, got, "still warning")

	board.Update(func(s *status.Status) { s.Snapshot.LastSuccess = clk.Now() })
	clk.Add(time.Minute)
	e.Evaluate(ctx)
	m = expect(t, got, "vwstream alert snapshot_too_old: cleared")
	if !strings.Contains(m.Message, "Cleared after 24h1m") {
		t.Errorf("clear message %q", m.Message)
	}
	e.Evaluate(ctx)
	none(t, got, "after the clear")
	if v := active(t, e, alert.SnapshotTooOld); v != 0 {
		t.Errorf("vwstream_alert_active{alert=snapshot_too_old} = %v after the clear, want 0", v)
	}
	if doc := board.Snapshot(); len(doc.Alerts) != 0 {
		t.Errorf("status alerts after the clear = %+v", doc.Alerts)
	}
}

// Vaultwarden's /alive answering 500 for UNHEALTHY_AFTER raises a critical
// alert that fails readiness; answering 200 again clears it. A failed snapshot
// raises its own critical alert at once.
func TestEngine_ChildUnhealthy(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	vw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/alive" || failing.Load() {
			http.Error(w, "database locked", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, `"2026-01-01T00:00:00Z"`)
	}))
	t.Cleanup(vw.Close)

	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	board := status.NewBoard(status.Options{Role: config.RolePrimary, Clock: clk.Now})
	board.SetState(status.StateOK)
	n, got := webhook(t)
	e := alert.New(alert.Options{Board: board, Notifier: n, Clock: clk.Now, UnhealthyAfter: 5 * time.Minute,
		Alive: func(ctx context.Context) error { return status.CheckAlive(ctx, vw.URL+"/alive") }})
	ctx := t.Context()

	e.Evaluate(ctx)
	clk.Add(4 * time.Minute)
	e.Evaluate(ctx)
	none(t, got, "failing for 4m")
	clk.Add(2 * time.Minute)
	e.Evaluate(ctx)
	m := expect(t, got, "vwstream alert child_unhealthy: critical")
	if !strings.Contains(m.Message, "500") {
		t.Errorf("message %q does not say what /alive answered", m.Message)
	}
	if ok, problems := board.Ready(); ok || !strings.Contains(strings.Join(problems, "\n"), "alert child_unhealthy") {
		t.Errorf("Ready() = %v %q; want the critical alert as a problem", ok, problems)
	}

	board.Update(func(s *status.Status) {
		s.Snapshot = &status.Snapshot{LastResult: status.ResultError, LastError: "destination target: connection refused"}
	})
	failing.Store(false)
	clk.Add(time.Minute)
	e.Evaluate(ctx)
	expect(t, got, "vwstream alert snapshot_failed: critical")
	expect(t, got, "vwstream alert child_unhealthy: cleared")
}

// A file system with less free space than DISK_FREE_MIN raises a warning,
// under a quarter of it a critical alert (escalation notifies at once), and
// freeing the space clears it. The file system is a real tmpfs filled with a
// real file.
func TestEngine_DiskLow(t *testing.T) {
	dir := testenv.Tmpfs(t, 8<<20)
	n, got := webhook(t)
	board := status.NewBoard(status.Options{Role: config.RolePrimary})
	e := alert.New(alert.Options{Board: board, Notifier: n, DiskFreeMin: 4 << 20, DiskPaths: []string{dir, dir + "/."}})
	ctx := t.Context()

	e.Evaluate(ctx)
	none(t, got, "empty file system")
	fill := filepath.Join(dir, "fill")
	write(t, fill, 5<<20)
	e.Evaluate(ctx)
	m := expect(t, got, "vwstream alert disk_low: warning")
	if !strings.Contains(m.Message, dir+" has") || !strings.Contains(m.Message, "DISK_FREE_MIN") {
		t.Errorf("message %q lacks the folder or the limit", m.Message)
	}
	write(t, fill, 15<<19) // 7.5 MiB of 8
	e.Evaluate(ctx)
	expect(t, got, "vwstream alert disk_low: critical")
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	e.Evaluate(ctx)
	expect(t, got, "vwstream alert disk_low: cleared")
}

func write(t *testing.T, path string, size int) {
	t.Helper()
	if err := os.WriteFile(path, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
}

// An image update rolled back (the new version never became healthy) raises
// a warning naming the container; the next pass that goes well clears it.
func TestEngine_UpdateFailed(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	board := status.NewBoard(status.Options{Role: config.RolePrimary, Clock: clk.Now})
	board.Update(func(s *status.Status) {
		s.Status = status.StateOK
		s.Updates = &status.Updates{Checks: 1, RolledBack: 1, LastCheck: clk.Now(),
			LastProblem: "vaultwarden: rolled back to v1 (v2 not healthy within 5m)"}
	})
	n, got := webhook(t)
	e := alert.New(alert.Options{Board: board, Notifier: n, Clock: clk.Now, Repeat: 24 * time.Hour})
	e.Evaluate(t.Context())
	m := expect(t, got, "vwstream alert update_failed: warning")
	if !strings.Contains(m.Message, "vaultwarden: rolled back") {
		t.Errorf("message %q does not name the container", m.Message)
	}
	if v := active(t, e, alert.UpdateFailed); v != 1 {
		t.Errorf("vwstream_alert_active{alert=update_failed} = %v, want 1", v)
	}
	board.Update(func(s *status.Status) { s.Updates.LastProblem = "" })
	clk.Add(time.Hour)
	e.Evaluate(t.Context())
	expect(t, got, "vwstream alert update_failed: cleared")
}
