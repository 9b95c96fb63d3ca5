package main

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/alert"
	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// serveVault runs the Vaultwarden stand-in on a loopback port and returns the port.
func serveVault(t *testing.T) int {
	t.Helper()
	v, err := vaultsim.Create(t.TempDir(), vaultsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = vaultsim.ServeListener(ctx, ln, v) }()
	t.Cleanup(func() { cancel(); <-done; v.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// freePort is a loopback port nobody listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// healthyDoc is the status of a primary that is doing its job.
func healthyDoc(now time.Time) status.Status {
	return status.Status{
		Status: status.StateOK, Role: "primary", Timestamp: now.Unix(), Datetime: now.UTC().Format(time.RFC3339),
		StartedAt: now.Add(-time.Hour),
		DB:        &status.DB{TXIDLocal: 5, TXIDReplicated: 5, LastSync: now},
		Files:     &status.Files{LastSync: now.Add(-10 * time.Second)},
		Snapshot:  &status.Snapshot{LastSuccess: now.Add(-time.Hour), LastResult: status.ResultOK},
		Lease:     &status.Lease{Holder: "me", Ours: true},
		Child:     &status.Child{PID: 1, Running: true},
	}
}

// unhealthyAlert is the child_unhealthy alert as a node's status shows it.
var unhealthyAlert = []status.Alert{{Name: alert.ChildUnhealthy, Severity: status.SeverityCritical,
	Message: "Vaultwarden's /alive has failed for 6m, over UNHEALTHY_AFTER=5m: vaultwarden: http://vaultwarden/alive answered 503"}}

// Each rule of `vwstream healthcheck`, one case each. A sidecar's healthcheck
// (--no-vaultwarden) judges vwstream alone: neither Vaultwarden's /alive nor
// its child_unhealthy alert makes it unhealthy.
func TestHealthcheck(t *testing.T) {
	now := time.Now()
	up := strconv.Itoa(serveVault(t))
	down := strconv.Itoa(freePort(t))
	for _, tc := range []struct {
		name  string
		env   []string
		args  []string
		edit  func(*status.Status) // nil: no status file at all
		lines []string             // substrings, one per stderr line; none = healthy
	}{
		{"healthy", []string{"ROCKET_PORT=" + up, "BACKUP_ENABLED=true"}, nil, func(*status.Status) {}, nil},
		{"vaultwarden down", []string{"ROCKET_PORT=" + down}, nil, func(*status.Status) {}, []string{"vaultwarden: http://127.0.0.1:" + down + "/alive"}},
		{"vaultwarden under the wrong path", []string{"ROCKET_PORT=" + up, "DOMAIN=https://vw.example.com/vault"}, nil, func(*status.Status) {}, []string{"/vault/alive answered 404"}},
		{"no vaultwarden probe", []string{"ROCKET_PORT=" + down}, []string{"--no-vaultwarden"}, func(*status.Status) {}, nil},
		{"vaultwarden's alert in a sidecar", []string{"ROCKET_PORT=" + down}, []string{"--no-vaultwarden"}, func(s *status.Status) { s.Alerts = unhealthyAlert }, nil},
		{"vaultwarden's alert", []string{"ROCKET_PORT=" + up}, nil, func(s *status.Status) { s.Alerts = unhealthyAlert }, []string{"alert child_unhealthy: Vaultwarden's /alive"}},
		{"no status", []string{"ROCKET_PORT=" + up}, nil, nil, []string{"no status available"}},
		{"replication lag", []string{"ROCKET_PORT=" + up, "HEALTHCHECK_MAX_SYNC_AGE=60"}, nil,
			func(s *status.Status) { s.DB.LagSeconds = 61; s.DB.TXIDLocal = 9 }, []string{"db: replication lag 1m1s"}},
		{"old file sync", []string{"ROCKET_PORT=" + up, "HEALTHCHECK_MAX_SYNC_AGE=60"}, nil,
			func(s *status.Status) { s.Files.LastSync = now.Add(-2 * time.Minute) }, []string{"files: last file sync 2m"}},
		{"old snapshot", []string{"ROCKET_PORT=" + up, "BACKUP_ENABLED=true", "BACKUP_MAX_AGE=30m"}, nil,
			func(*status.Status) {}, []string{"snapshot: newest good snapshot is 1h"}},
		{"old snapshot, backups off", []string{"ROCKET_PORT=" + up, "BACKUP_MAX_AGE=30m"}, nil, func(*status.Status) {}, nil},
		{"dead daemon", []string{"ROCKET_PORT=" + up}, nil,
			func(s *status.Status) { s.Timestamp = now.Add(-5 * time.Minute).Unix() }, []string{"is vwstream run alive"}},
		{"everything wrong", []string{"ROCKET_PORT=" + down, "HEALTHCHECK_MAX_SYNC_AGE=60"}, nil,
			func(s *status.Status) { s.Files.LastSync = time.Time{}; s.Child.Running = false },
			[]string{"vaultwarden: http://", "files: no file sync", "vaultwarden: not running"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sync-status.json")
			if tc.edit != nil {
				doc := healthyDoc(now)
				tc.edit(&doc)
				if err := status.WriteFile(path, doc); err != nil {
					t.Fatal(err)
				}
			}
			env := append([]string{"STATUS_ADDR=off", "STATUS_FILE=" + path, "PRIMARY_SYNC_INTERVAL=30"}, tc.env...)
			start := time.Now()
			code, stdout, stderr := invoke(t, env, append([]string{"healthcheck"}, tc.args...)...)
			if took := time.Since(start); took > 6*time.Second {
				t.Errorf("healthcheck took %s; want it within its 5s timeout", took)
			}
			if stdout != "" {
				t.Errorf("stdout %q; want none", stdout)
			}
			if len(tc.lines) == 0 {
				if code != 0 || stderr != "" {
					t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, stderr)
				}
				return
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if code != 1 || len(lines) != len(tc.lines) {
				t.Fatalf("exit %d, stderr %q; want 1 and %d lines", code, stderr, len(tc.lines))
			}
			for i, want := range tc.lines {
				if !strings.HasPrefix(lines[i], "vwstream healthcheck: ") || !strings.Contains(lines[i], want) {
					t.Errorf("line %d %q; want it to contain %q", i, lines[i], want)
				}
			}
		})
	}
}
