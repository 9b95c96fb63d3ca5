package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/status"
)

func TestStatus_Sources(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sync-status.json")
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	env := []string{"STATUS_ADDR=" + addr, "STATUS_FILE=" + path}

	// Neither: exit 1 and one line naming both.
	code, _, stderr := invoke(t, env, "status")
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, addr) || !strings.Contains(stderr, path) {
		t.Fatalf("no source: exit %d, stderr %q", code, stderr)
	}

	// The file, as text and as JSON.
	now := time.Now()
	doc := healthyDoc(now)
	doc.Errors = []string{"notify: 401 Unauthorized"}
	if err := status.WriteFile(path, doc); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := invoke(t, env, "status")
	if code != 0 || stderr != "" {
		t.Fatalf("from file: exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"ok (primary)", "from " + path, "txid 5 local, 5 replicated", "held by this node", "running (pid 1)", "notify: 401 Unauthorized"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary does not contain %q:\n%s", want, out)
		}
	}
	code, out, _ = invoke(t, env, "status", "--json")
	var got status.Status
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || got.Timestamp != doc.Timestamp {
		t.Fatalf("--json: exit %d, %v:\n%s", code, err, out)
	}

	// A running daemon is preferred over the file.
	b := status.NewBoard(status.Options{Role: "secondary"})
	srv, err := status.Listen(addr, status.NewHandler(b, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	code, out, _ = invoke(t, env, "status", "--json")
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || got.Role != "secondary" {
		t.Fatalf("--json with the daemon up: exit %d, %v:\n%s", code, err, out)
	}
}

// TestStatus_ServerDatabaseRow: with a PostgreSQL or MySQL database the db
// row says "database: ... snapshots every ..." and the last dump's age.
func TestStatus_ServerDatabaseRow(t *testing.T) {
	now := time.Now()
	var b strings.Builder
	printSummary(&b, &status.Status{Status: status.StateOK, Role: "primary", DB: &status.DB{
		Server: "postgresql vw (db:5432), snapshots every 1h0m0s (BACKUP_CRON=@hourly)", SnapshotEvery: 3600, LastSync: now.Add(-20 * time.Minute)}},
		"file", now)
	if !strings.Contains(b.String(), "database: postgresql vw (db:5432), snapshots every 1h0m0s (BACKUP_CRON=@hourly); last dump 20m") {
		t.Errorf("status summary:\n%s", b.String())
	}
}

// TestStatus_AlertsAndDrill: the summary lists the active alerts and the last
// restore drill.
func TestStatus_AlertsAndDrill(t *testing.T) {
	now := time.Now()
	var b strings.Builder
	printSummary(&b, &status.Status{Status: status.StateOK, Role: "primary",
		Drill: &status.Drill{LastResult: status.ResultError, LastTime: now.Add(-time.Hour), LastDuration: 4.2, LastError: "damaged"},
		Alerts: []status.Alert{{Name: "drill_failed", Severity: status.SeverityCritical, Since: now.Add(-time.Hour), Message: "the last restore drill failed: damaged"},
			{Name: "disk_low", Severity: status.SeverityWarning, Since: now, Message: "/data has 1.0 GB free"}}}, "file", now)
	for _, want := range []string{"drill        last error in 4.2s, 1h0m ago; last passed never",
		"alerts       drill_failed (critical, since 1h0m ago): the last restore drill failed: damaged",
		"             disk_low (warning, since 0s ago): /data has 1.0 GB free"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status summary lacks %q:\n%s", want, b.String())
		}
	}
}
