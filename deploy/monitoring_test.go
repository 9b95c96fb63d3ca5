package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/alert"
	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/testenv"
	"sigs.k8s.io/yaml"
)

const (
	rulesFile     = "monitoring/vwstream-rules.yml"
	dashboardFile = "monitoring/vwstream-dashboard.json"
)

// ruleFile is the Prometheus rule file format, decoded strictly: a field
// Prometheus does not know fails the test. promtool (TestMonitoring_Promtool)
// checks the expressions' syntax.
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

// TestMonitoring_Rules checks the alerting rules' shape: every rule an alert
// with an expression, a severity the node uses and a summary, and a rule for
// every alert the node raises.
func TestMonitoring_Rules(t *testing.T) {
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(b, &rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	if len(rf.Groups) == 0 {
		t.Fatalf("%s has no group", rulesFile)
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v lacks its alert name, expression or summary", r)
			}
			if sev := r.Labels["severity"]; sev != status.SeverityWarning && sev != status.SeverityCritical {
				t.Errorf("rule %s: severity %q", r.Alert, sev)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("rule %s: for %q: %v", r.Alert, r.For, err)
				}
			}
		}
	}
	// Each condition the node alerts on has a rule (by the alert label, or by
	// the metric the rule reads instead).
	byMetric := map[string]string{alert.SnapshotFailed: "vwstream_snapshot_last_ok", alert.SnapshotTooOld: `kind="snapshot"`,
		alert.DrillFailed: "vwstream_drill_last_ok"}
	for _, name := range alert.Names {
		if !strings.Contains(string(b), `alert="`+name+`"`) && (byMetric[name] == "" || !strings.Contains(string(b), byMetric[name])) {
			t.Errorf("%s has no rule for the node's alert %s", rulesFile, name)
		}
	}
}

// TestMonitoring_NamesExist checks that every vwstream_* metric the rules and
// the dashboard query is one a node's /metrics exposes, and every alert label
// value one the node raises. The exposed names come from a scrape of the
// node's own registry with every section of the status document filled in.
func TestMonitoring_NamesExist(t *testing.T) {
	exposed := scrapeNames(t)
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if bad := unknownMetrics([]string{string(rules)}, exposed); len(bad) > 0 {
		t.Errorf("%s queries metrics /metrics does not expose: %v", rulesFile, bad)
	}
	exprs := dashboardExprs(t)
	if len(exprs) < 10 {
		t.Fatalf("the dashboard has %d queries; did its layout change?", len(exprs))
	}
	if bad := unknownMetrics(exprs, exposed); len(bad) > 0 {
		t.Errorf("%s queries metrics /metrics does not expose: %v", dashboardFile, bad)
	}
	for _, e := range exprs {
		if !strings.Contains(e, "vwstream_") {
			t.Errorf("dashboard query %q names no vwstream metric", e)
		}
	}
	for _, m := range regexp.MustCompile(`alert="([a-z_]+)"`).FindAllStringSubmatch(string(rules), -1) {
		if !slices.Contains(alert.Names, m[1]) {
			t.Errorf("%s names alert %q, which the node never raises (%v)", rulesFile, m[1], alert.Names)
		}
	}
	// The check itself finds a name that does not exist.
	if bad := unknownMetrics([]string{"rate(vwstream_snapshots_taken_total[5m])"}, exposed); len(bad) != 1 {
		t.Errorf("a made-up metric passed the check: %v", bad)
	}
}

var metricName = regexp.MustCompile(`\bvwstream_[a-z0-9_]+`)

// unknownMetrics lists the vwstream_* names in exprs that exposed lacks.
func unknownMetrics(exprs []string, exposed map[string]bool) []string {
	var bad []string
	for _, e := range exprs {
		for _, name := range metricName.FindAllString(e, -1) {
			if !exposed[name] && !slices.Contains(bad, name) {
				bad = append(bad, name)
			}
		}
	}
	return bad
}

// dashboardExprs returns every query ("expr") in the dashboard.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if e, ok := v["expr"].(string); ok {
				out = append(out, e)
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
	return out
}

// scrapeNames serves a node's registry (the board's gauges, the store
// counters, the alerts) with every section filled in and returns the metric
// names a scrape of /metrics shows.
func scrapeNames(t *testing.T) map[string]bool {
	t.Helper()
	now := time.Now()
	b := status.NewBoard(status.Options{Role: config.RolePrimary, Mode: config.ModePersistent, Version: "test"})
	b.SetState(status.StateOK)
	b.Update(func(s *status.Status) {
		s.DB = &status.DB{TXIDLocal: 2, TXIDReplicated: 1, LastSync: now}
		s.Files = &status.Files{Pending: 1, LastSync: now}
		s.Snapshot = &status.Snapshot{LastResult: status.ResultOK, LastSuccess: now, LastSize: 1}
		s.Drill = &status.Drill{LastResult: status.ResultOK, LastSuccess: now, LastDuration: 1}
		s.Lease = &status.Lease{Ours: true, ExpiresAt: now.Add(time.Minute)}
		s.Child = &status.Child{Running: true}
	})
	m := status.NewMetrics(b)
	m.Registry().MustRegister(alert.New(alert.Options{Board: b}))
	local, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := m.Instrument("target", local)
	if _, err := store.Put(context.Background(), "a", bytes.NewReader([]byte("x")), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(context.Background(), "../outside", bytes.NewReader(nil), objstore.PutOptions{}); err == nil {
		t.Fatal("a key outside the store was accepted") // the error counter needs one failure
	}
	srv := httptest.NewServer(status.NewHandler(b, m))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	names := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		names[strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
	}
	for _, want := range []string{"vwstream_store_errors_total", "vwstream_alert_active", "vwstream_drill_last_ok"} {
		if !names[want] {
			t.Fatalf("the scrape lacks %s; the fixture is incomplete:\n%s", want, body)
		}
	}
	return names
}

// TestMonitoring_Promtool: Prometheus's own checker (Debian's promtool, which
// scripts/test installs) accepts the rules file, expressions included.
func TestMonitoring_Promtool(t *testing.T) {
	promtool := testenv.Tool(t, "promtool")
	out, err := exec.Command(promtool, "check", "rules", rulesFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", rulesFile, err, out)
	}
	if !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool check rules %s said:\n%s", rulesFile, out)
	}
}
