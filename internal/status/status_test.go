package status

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBoard_Snapshot(t *testing.T) {
	now := time.Date(2026, 11, 23, 19, 2, 11, 0, time.UTC)
	b := NewBoard(Options{Role: "primary", Mode: "persistent", Clock: func() time.Time { return now }})

	// The fields of the replaced image's sync-status.json, with their JSON types.
	raw, err := json.Marshal(b.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m["status"] != "starting" || m["role"] != "primary" || m["timestamp"] != float64(now.Unix()) || m["datetime"] != "2026-11-23T19:02:11Z" {
		t.Fatalf("compatible fields: %s", raw)
	}
	if errs, ok := m["errors"].([]any); !ok || len(errs) != 0 {
		t.Fatalf("errors must be an empty list, not absent: %s", raw)
	}

	b.SetState(StateOK)
	var txid uint64 = 7
	b.AddSource(func(s *Status) { s.DB = &DB{TXIDLocal: txid, TXIDReplicated: txid} })
	if got := b.Snapshot(); got.Status != StateOK || got.DB == nil || got.DB.TXIDLocal != 7 {
		t.Fatalf("after SetState(ok) with a source: %+v", got)
	}
	b.SetError("notify", "ntfy.sh: 502 Bad Gateway")
	b.Update(func(s *Status) { s.Snapshot = &Snapshot{LastResult: ResultError, LastError: "upload: timeout"} })
	got := b.Snapshot()
	if got.Status != StateError || len(got.Errors) != 2 ||
		got.Errors[0] != "notify: ntfy.sh: 502 Bad Gateway" || got.Errors[1] != "snapshot: last snapshot failed: upload: timeout" {
		t.Fatalf("with errors: status %q errors %q", got.Status, got.Errors)
	}
	// A snapshot is a copy: changing it does not change the board.
	got.Snapshot.LastResult = ResultOK
	b.SetError("notify", "")
	b.Update(func(s *Status) { s.Snapshot.LastResult = ResultOK })
	if got := b.Snapshot(); got.Status != StateOK || len(got.Errors) != 0 {
		t.Fatalf("after errors cleared: %q %q", got.Status, got.Errors)
	}
	b.SetState(StateStopping)
	b.SetError("child", "exited")
	if got := b.Snapshot(); got.Status != StateStopping {
		t.Fatalf("stopping with an error: %q; want stopping", got.Status)
	}
}

func TestStatus_Problems(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	started := now.Add(-72 * time.Hour)
	exit := 137
	limits := Limits{MaxSyncAge: 10 * time.Minute, MaxSnapshotAge: 48 * time.Hour, StaleAfter: time.Minute}
	base := func() *Status {
		return &Status{
			Status: StateOK, Role: "primary", Timestamp: now.Add(-5 * time.Second).Unix(), StartedAt: started,
			DB:       &DB{TXIDLocal: 10, TXIDReplicated: 10, LastSync: now.Add(-time.Hour)}, // idle, caught up
			Files:    &Files{LastSync: now.Add(-4 * time.Minute)},
			Snapshot: &Snapshot{LastSuccess: now.Add(-20 * time.Hour), LastResult: ResultOK},
			Lease:    &Lease{Holder: "a", Ours: true},
			Child:    &Child{PID: 42, Running: true},
		}
	}
	for _, tc := range []struct {
		name   string
		edit   func(*Status)
		limits Limits
		want   string // substring of the only problem; "" = healthy
	}{
		{"healthy", func(*Status) {}, limits, ""},
		{"starting", func(s *Status) { s.Status = StateStarting }, limits, "starting"},
		{"stale document", func(s *Status) { s.Timestamp = now.Add(-10 * time.Minute).Unix() }, limits, "is vwstream run alive"},
		{"stale ignored without limit", func(s *Status) { s.Timestamp = 1 }, Limits{}, ""},
		{"db lag", func(s *Status) { s.DB.LagSeconds = 601; s.DB.TXIDLocal = 12 }, limits, "replication lag 10m1s (transactions 11..12 not in the replica), over HEALTHCHECK_MAX_SYNC_AGE=10m"},
		{"db lag under limit", func(s *Status) { s.DB.LagSeconds = 599 }, limits, ""},
		{"secondary pull age", func(s *Status) {
			s.Role = "secondary"
			s.Lease.Ours = false
			s.DB.LastSync = now.Add(-11 * time.Minute)
		}, limits, "db: last pull 11m ago"},
		{"files old", func(s *Status) { s.Files.LastSync = now.Add(-11 * time.Minute) }, limits, "files: last file sync 11m ago"},
		{"files never synced", func(s *Status) { s.Files.LastSync = time.Time{} }, limits, "no file sync completed since start"},
		{"files never synced, just started", func(s *Status) { s.Files.LastSync = time.Time{}; s.StartedAt = now.Add(-time.Minute) }, limits, ""},
		{"snapshot old", func(s *Status) { s.Snapshot.LastSuccess = now.Add(-49 * time.Hour) }, limits, "newest good snapshot is 49h old, over BACKUP_MAX_AGE=48h"},
		{"snapshot old, backups off", func(s *Status) { s.Snapshot.LastSuccess = now.Add(-49 * time.Hour) }, Limits{MaxSyncAge: time.Hour}, ""},
		{"no snapshot since start", func(s *Status) { s.Snapshot = nil }, limits, "snapshot: none made in the 72h since start"},
		{"lease lost", func(s *Status) { s.Lease = &Lease{Holder: "b", Error: "lease lost: taken over by b"} }, limits, "lease: lease lost: taken over by b"},
		{"child exited", func(s *Status) { s.Child.Running = false; s.Child.ExitCode = &exit }, limits, "vaultwarden: not running (exited with code 137)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			tc.edit(s)
			got := s.Problems(tc.limits, now)
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("problems %q; want none", got)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0], tc.want) {
				t.Fatalf("problems %q; want one containing %q", got, tc.want)
			}
		})
	}
}

func TestBoard_WriteLoop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sync-status.json")
	b := NewBoard(Options{Role: "primary"})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { b.WriteLoop(ctx, path, time.Hour, nil) })

	// Readers never see a partial document while the writer keeps replacing it.
	stop := make(chan struct{})
	var reads, bad int
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := ReadFile(path); err == nil {
				reads++
			} else if !os.IsNotExist(err) && !strings.Contains(err.Error(), "no such file") {
				bad++
			}
		}
	})
	for i := range 20 {
		b.Update(func(s *Status) { s.Files = &Files{Uploaded: int64(i + 1)} })
		time.Sleep(30 * time.Millisecond)
	}
	// A change is on disk within the coalescing gap, without waiting for the interval.
	b.SetState(StateOK)
	deadline := time.Now().Add(2 * time.Second)
	for {
		doc, err := ReadFile(path)
		if err == nil && doc.Status == StateOK && doc.Files.Uploaded == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("change not written within 2s: %+v %v", doc, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Stopping writes the final state.
	b.SetState(StateStopping)
	cancel()
	close(stop)
	wg.Wait()
	if bad > 0 || reads == 0 {
		t.Fatalf("%d unreadable of %d reads", bad, reads+bad)
	}
	doc, err := ReadFile(path)
	if err != nil || doc.Status != StateStopping {
		t.Fatalf("final document %+v, %v; want status stopping", doc, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, %v; want 0644", fi.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp")); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestAliveURL(t *testing.T) {
	for _, tc := range []struct {
		port   int
		tls    string
		domain string
		want   string
	}{
		{80, "", "", "http://127.0.0.1:80/alive"},
		{8080, "", "https://vw.example.com", "http://127.0.0.1:8080/alive"},
		{8080, "", "https://vw.example.com/", "http://127.0.0.1:8080/alive"},
		{443, `{certs="/ssl/certs.pem",key="/ssl/key.pem"}`, "https://example.com/vault/", "https://127.0.0.1:443/vault/alive"},
	} {
		if got := AliveURL(tc.port, tc.tls, tc.domain); got != tc.want {
			t.Errorf("AliveURL(%d, %q, %q) = %s; want %s", tc.port, tc.tls, tc.domain, got, tc.want)
		}
	}
}
