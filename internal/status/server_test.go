package status

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/lease"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// metricValue finds one sample in Prometheus text output.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no sample %s in /metrics", series)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestServer_Endpoints(t *testing.T) {
	b := NewBoard(Options{Role: "primary", Mode: "persistent", Version: "1.2.3", Limits: Limits{MaxSyncAge: time.Minute}})
	m := NewMetrics(b)
	srv, err := Listen("127.0.0.1:0", NewHandler(b, m), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	base := "http://" + srv.Addr()

	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz while starting: %d; want 200 (the process is alive)", code)
	}
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "starting") {
		t.Fatalf("/readyz while starting: %d %q; want 503 naming the reason", code, body)
	}

	b.SetState(StateOK)
	lastSync := time.Now().Add(-time.Second)
	filesSync := time.Now().Truncate(time.Second)
	b.AddSource(func(s *Status) {
		s.DB = &DB{TXIDLocal: 42, TXIDReplicated: 41, LagSeconds: 0.5, LastSync: lastSync}
	})
	b.Update(func(s *Status) {
		s.Lease = &Lease{Holder: "me", Ours: true, ExpiresAt: time.Now().Add(30 * time.Second)}
		s.Child = &Child{PID: 9, Running: true}
		s.Snapshot = &Snapshot{LastSuccess: time.Now().Add(-time.Hour), LastSize: 12345, LastResult: ResultOK}
		s.Files = &Files{LastSync: filesSync}
		s.Drill = &Drill{LastResult: ResultOK, LastSuccess: time.Unix(1700000400, 0), LastDuration: 2.5}
	})
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz when healthy: %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz?role=primary"); code != 200 {
		t.Fatalf("/readyz?role=primary on a healthy primary: %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz?role=secondary"); code != 503 || !strings.Contains(body, "role is primary, not secondary") {
		t.Fatalf("/readyz?role=secondary on a primary: %d %q; want 503 naming the role", code, body)
	}
	code, body := get(t, base+"/status")
	var doc Status
	if err := json.Unmarshal([]byte(body), &doc); code != 200 || err != nil || doc.DB.TXIDLocal != 42 || doc.Status != StateOK {
		t.Fatalf("/status: %d %v %s", code, err, body)
	}

	// Store traffic is counted through Instrument.
	local, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := m.Instrument("local", local)
	if _, err := store.Put(t.Context(), "a", strings.NewReader("hello"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Stat(t.Context(), "missing"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatal(err)
	}
	rc, err := store.Get(t.Context(), "a", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()
	if _, err := store.Put(t.Context(), "a", strings.NewReader("x"), objstore.PutOptions{IfNoneMatch: true}); !errors.Is(err, objstore.ErrPrecondition) {
		t.Fatal(err)
	}

	_, text := get(t, base+"/metrics")
	for series, want := range map[string]float64{
		`vwstream_db_replication_lag_seconds`:                             0.5,
		`vwstream_db_txid{kind="local"}`:                                  42,
		`vwstream_db_txid{kind="replicated"}`:                             41,
		`vwstream_lease_held`:                                             1,
		`vwstream_child_running`:                                          1,
		`vwstream_ready`:                                                  1,
		`vwstream_snapshot_last_size_bytes`:                               12345,
		`vwstream_store_requests_total{op="put",store="local"}`:           2,
		`vwstream_store_requests_total{op="stat",store="local"}`:          1,
		`vwstream_store_bytes_total{direction="up",store="local"}`:        5,
		`vwstream_store_bytes_total{direction="down",store="local"}`:      5,
		`vwstream_info{mode="persistent",role="primary",version="1.2.3"}`: 1,
		`vwstream_last_success_timestamp_seconds{kind="db"}`:              float64(lastSync.UnixNano()) / 1e9,
		`vwstream_last_success_timestamp_seconds{kind="files"}`:           float64(filesSync.Unix()),
		`vwstream_last_success_timestamp_seconds{kind="drill"}`:           1700000400,
		`vwstream_drill_duration_seconds`:                                 2.5,
		`vwstream_drill_last_ok`:                                          1,
	} {
		if got := metricValue(t, text, series); got != want {
			t.Errorf("%s = %v; want %v", series, got, want)
		}
	}
	if strings.Contains(text, `vwstream_store_errors_total{op="stat"`) || strings.Contains(text, `vwstream_store_errors_total{op="put"`) {
		t.Errorf("not-found and failed preconditions counted as errors:\n%s", text)
	}
	if snap := metricValue(t, text, `vwstream_last_success_timestamp_seconds{kind="snapshot"}`); snap != metricValue(t, text, "vwstream_snapshot_last_success_timestamp_seconds") {
		t.Errorf("last success of kind snapshot %v disagrees with vwstream_snapshot_last_success_timestamp_seconds", snap)
	}
	if age := metricValue(t, text, "vwstream_snapshot_age_seconds"); age < 3599 || age > 3700 {
		t.Errorf("snapshot age %v; want about 3600", age)
	}

	// Unhealthy: /readyz says why, the metrics agree.
	b.Update(func(s *Status) { s.Lease = &Lease{Holder: "other", Error: "lease lost: taken over by other"} })
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "taken over by other") {
		t.Fatalf("/readyz with the lease lost: %d %q", code, body)
	}
	_, text = get(t, base+"/metrics")
	if metricValue(t, text, "vwstream_ready") != 0 || metricValue(t, text, "vwstream_lease_held") != 0 {
		t.Fatalf("metrics after losing the lease:\n%s", text)
	}

	// Fetch and Load find the document over HTTP first, then in the file.
	fetched, src, err := Load(t.Context(), srv.Addr(), "")
	if err != nil || fetched.DB.TXIDLocal != 42 || !strings.HasPrefix(src, "http://") {
		t.Fatalf("Load over HTTP: %+v %s %v", fetched, src, err)
	}
}

func TestLoad_FallsBackToFile(t *testing.T) {
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	path := filepath.Join(t.TempDir(), "sync-status.json")

	_, _, err = Load(t.Context(), addr, path)
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), path) {
		t.Fatalf("nothing available: %v; want an error naming both sources", err)
	}
	if err := WriteFile(path, Status{Status: StateOK, Role: "secondary"}); err != nil {
		t.Fatal(err)
	}
	doc, src, err := Load(t.Context(), addr, path)
	if err != nil || doc.Role != "secondary" || src != path {
		t.Fatalf("Load from file: %+v %s %v", doc, src, err)
	}
}

func TestCheckAlive(t *testing.T) {
	v, err := vaultsim.Create(t.TempDir(), vaultsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })

	// Vaultwarden under a DOMAIN path, over TLS with a self-signed certificate.
	mux := http.NewServeMux()
	mux.Handle("/vault/", http.StripPrefix("/vault", vaultsim.Handler(v)))
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	port, _ := strconv.Atoi(srv.URL[strings.LastIndex(srv.URL, ":")+1:])

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := CheckAlive(ctx, AliveURL(port, "{certs=x,key=y}", "https://vw.example.com/vault")); err != nil {
		t.Fatalf("alive over TLS under /vault: %v", err)
	}
	if err := CheckAlive(ctx, AliveURL(port, "{certs=x,key=y}", "")); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("alive at the wrong path: %v; want a 404 failure", err)
	}
	// Like Vaultwarden, /alive fails when the database does.
	v.Close()
	if err := CheckAlive(ctx, AliveURL(port, "on", "https://vw.example.com/vault/")); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("alive with the database closed: %v; want a 503 failure", err)
	}
}

// TestOutputs_NoSecrets fills a node's status from a configuration full of
// secrets and scans every output for them.
func TestOutputs_NoSecrets(t *testing.T) {
	const mark = "S3CR3T-status"
	cfg, err := config.Load(nil, []string{
		"S3_BUCKET=bucket", "S3_ACCESS_KEY_ID=AKIA" + mark, "S3_SECRET_ACCESS_KEY=" + mark,
		"ENCRYPTION_PASSPHRASE=" + mark, "GPG_PASSPHRASE=" + mark, "BACKUP_ENABLED=true",
		"NOTIFICATION_URLS=ntfy://user:" + mark + "@ntfy.sh/topic", "S3_ENDPOINT=https://minio.invalid:9000",
	}, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	b := NewBoard(Options{Role: cfg.Role, Mode: cfg.Mode, Version: "test", Limits: Limits{MaxSyncAge: cfg.Health.MaxSyncAge, MaxSnapshotAge: cfg.Backup.MaxAge, StaleAfter: DefaultStaleAfter}})
	m := NewMetrics(b)
	local, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l, err := lease.Acquire(t.Context(), m.Instrument("local", local), lease.Options{TTL: 2 * time.Second, RenewInterval: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Release(context.Background()) })
	b.AddSource(func(s *Status) { s.Lease = LeaseOf(l) })
	b.SetState(StateOK)
	b.SetError("notify", "send: 401 Unauthorized")
	b.Update(func(s *Status) {
		s.DB = &DB{LastError: "put db/0000: access denied"}
		s.Snapshot = &Snapshot{LastResult: ResultError, LastError: "encrypt: bad key"}
	})

	srv, err := Listen("127.0.0.1:0", NewHandler(b, m), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	path := filepath.Join(t.TempDir(), "status.json")
	if err := WriteFile(path, b.Snapshot()); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{"file": string(file)}
	for _, p := range []string{"/status", "/metrics", "/readyz", "/healthz"} {
		_, outputs[p] = get(t, "http://"+srv.Addr()+p)
	}
	for name, out := range outputs {
		if strings.Contains(out, mark) {
			t.Errorf("%s contains a secret:\n%s", name, out)
		}
	}
	if !strings.Contains(outputs["/status"], "access denied") {
		t.Fatal("the scan looked at an empty document")
	}
}

// TestMetrics_ServerDatabase: a PostgreSQL or MySQL database has no
// replication: the metrics give the snapshot interval and the last dump's
// time, no lag or transaction ids.
func TestMetrics_ServerDatabase(t *testing.T) {
	b := NewBoard(Options{Role: "primary", Mode: "persistent", Version: "1"})
	m := NewMetrics(b)
	srv, err := Listen("127.0.0.1:0", NewHandler(b, m), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	b.SetState(StateOK)
	dump := time.Unix(1700000000, 0)
	b.AddSource(func(s *Status) {
		s.DB = &DB{Server: "postgresql vw (db:5432), snapshots every 1h0m0s", SnapshotEvery: 3600, LastSync: dump}
	})
	_, text := get(t, "http://"+srv.Addr()+"/metrics")
	if got := metricValue(t, text, "vwstream_db_snapshot_interval_seconds"); got != 3600 {
		t.Errorf("interval = %v", got)
	}
	if got := metricValue(t, text, "vwstream_db_last_sync_timestamp_seconds"); got != 1700000000 {
		t.Errorf("last dump = %v", got)
	}
	if strings.Contains(text, "vwstream_db_replication_lag_seconds ") || strings.Contains(text, "vwstream_db_txid{") {
		t.Errorf("replication series for a server database:\n%s", text)
	}
}

func TestMetrics_Updates(t *testing.T) {
	b := NewBoard(Options{Role: "primary", Mode: "persistent", Version: "1"})
	m := NewMetrics(b)
	srv, err := Listen("127.0.0.1:0", NewHandler(b, m), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	b.SetState(StateOK)
	_, text := get(t, "http://"+srv.Addr()+"/metrics")
	if strings.Contains(text, "vwstream_update") {
		t.Errorf("update series without UPDATE_ENABLED:\n%s", text)
	}
	b.AddSource(func(s *Status) {
		s.Updates = &Updates{Checks: 5, Updated: 2, RolledBack: 1, Failures: 1, LastCheck: time.Unix(1700000000, 0)}
	})
	_, text = get(t, "http://"+srv.Addr()+"/metrics")
	for name, want := range map[string]float64{"vwstream_update_checks_total": 5, "vwstream_updates_total": 2,
		"vwstream_update_rollbacks_total": 1, "vwstream_update_failures_total": 1, "vwstream_update_last_check_timestamp_seconds": 1700000000} {
		if got := metricValue(t, text, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if doc := b.Snapshot(); doc.Updates == nil || doc.Updates.RolledBack != 1 {
		t.Errorf("status document: %+v", doc.Updates)
	}
}
