package node_test

// The sidecar mode of `vwstream run` (no command), driven the way the kubelet
// drives a native sidecar in deploy/kubernetes and deploy/helm.

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/alert"
	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/node"
	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// startupProbe is the sidecar's startupProbe of the Kubernetes manifests.
const startupProbe = "/readyz?role=primary"

// probeUntilReady polls the startup probe on addr like the kubelet does, until
// it answers 200; it fails the test when the process exits first. It reports
// how many probes failed before, and checks that the liveness probe (/healthz)
// passes all along, so the kubelet never restarts a sidecar busy restoring.
func probeUntilReady(t *testing.T, p *proc, addr string) (failed int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			t.Fatalf("%s exited with code %d before its startup probe passed", p.name, p.code)
		}
		code := get(t, addr, startupProbe)
		if code == http.StatusOK {
			return failed
		}
		failed++
		if code != 0 {
			if live := get(t, addr, "/healthz"); live != http.StatusOK {
				t.Fatalf("%s: /healthz answered %d while starting; the kubelet would restart it", p.name, live)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %s did not pass within 90 s", p.name, startupProbe)
	return failed
}

// kubeletPod is one pod's life as the kubelet runs it: vwstream (no command)
// first, probed until its startup probe passes; the app (the stand-in) after
// it; on stop SIGTERM to the app and, once it exited, to vwstream.
type kubeletPod struct {
	t                  *testing.T
	name, dir, ledger  string
	statusAddr, vwload string
	sidecar, app       *proc
}

// startSidecar starts vwstream run without a command on dir, as the pod's
// native sidecar; extra is added to its environment.
func startSidecar(t *testing.T, s testenv.S3, name, dir, ledger string, extra ...string) *kubeletPod {
	t.Helper()
	vwstream, vwload := binaries(t)
	p := &kubeletPod{t: t, name: name, dir: dir, ledger: ledger, statusAddr: testenv.FreeAddr(t), vwload: vwload}
	p.sidecar = startProc(t, name+": vwstream run", runEnv(s, dir, append(extra, "STATUS_ADDR="+p.statusAddr)...), vwstream, "run")
	return p
}

// startApp starts the app once the startup probe passed, writing 100 tx/s and
// attachments for a few seconds before it returns.
func (p *kubeletPod) startApp() {
	p.t.Helper()
	p.app = startProc(p.t, p.name+": app", os.Environ(), p.vwload, "serve", "--dir", p.dir, "--addr", testenv.FreeAddr(p.t),
		"--write-rate", "100", "--ledger", p.ledger)
	time.Sleep(4 * time.Second)
	if p.sidecar.exited() {
		p.t.Fatalf("%s: vwstream exited with code %d while the app ran", p.name, p.sidecar.code)
	}
}

// stop stops the pod the way the kubelet does; vwstream must exit 0 within
// budget, the shutdown budget terminationGracePeriodSeconds covers.
func (p *kubeletPod) stop(budget time.Duration) {
	p.t.Helper()
	p.app.signal(syscall.SIGTERM)
	if code := p.app.wait(30 * time.Second); code != 0 {
		p.t.Fatalf("%s: the app exited with code %d after SIGTERM", p.name, code)
	}
	stopAt := time.Now()
	p.sidecar.signal(syscall.SIGTERM)
	if code := p.sidecar.wait(budget); code != 0 {
		p.t.Fatalf("%s: vwstream exited with code %d after SIGTERM, want 0", p.name, code)
	}
	p.t.Logf("%s: vwstream stopped %s after its SIGTERM (budget %s)", p.name, time.Since(stopAt).Round(time.Millisecond), budget)
}

// checkReplica restores the replica and checks that it holds every
// transaction of the ledger and every file written to dir.
func checkReplica(t *testing.T, cfg *config.Config, name, dir, ledger string) {
	t.Helper()
	restored := restoreAll(t, cfg)
	rep, err := vaultsim.Verify(filepath.Join(restored, "db.sqlite3"), ledger, time.Time{})
	if err != nil {
		t.Fatalf("%s: the replica lacks committed transactions: %v (%+v)", name, err, rep)
	}
	written, got := userFiles(t, dir), userFiles(t, restored)
	for path, sum := range written {
		if g, ok := got[path]; !ok || g != sum {
			t.Errorf("%s: %s was written but is not in S3 as written", name, path)
		}
	}
	t.Logf("%s: %d committed transactions, all in the replica", name, rep.LedgerEntries)
}

// checkRestored checks that the data folder dir holds every transaction of
// the ledger and at least the files of the folder from.
func checkRestored(t *testing.T, what, dir, from, ledger string) {
	t.Helper()
	rep, err := vaultsim.Verify(filepath.Join(dir, "db.sqlite3"), ledger, time.Time{})
	if err != nil {
		t.Fatalf("%s before the data folder was complete: %v (%+v)", what, err, rep)
	}
	if got, want := len(userFiles(t, dir)), len(userFiles(t, from)); got < want {
		t.Fatalf("%s with %d of %d files in the data folder", what, got, want)
	}
}

// get answers the status code of GET path on addr, 0 when nothing answers.
func get(t *testing.T, addr, path string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestRun_SidecarLikeKubelet: vwstream without a command, run as the native
// sidecar of deploy/kubernetes. A pod on an existing volume: the app starts
// once the startup probe passed, and after the kubelet's stop order (app,
// then vwstream within the shutdown budget) everything committed is in S3.
// The pod rescheduled on an empty volume: the startup probe passes only once
// the data folder holds every committed transaction, and this life loses
// nothing either.
func TestRun_SidecarLikeKubelet(t *testing.T) {
	s := testenv.NewS3(t)
	work := t.TempDir()
	ledger := filepath.Join(work, "ledger")
	first := filepath.Join(work, "volume-1", "data")
	createVault(t, first, 31)
	cfg := s3Config(t, s, first)
	budget := node.ShutdownBudget(cfg)

	p := startSidecar(t, s, "pod on an existing volume", first, ledger)
	probeUntilReady(t, p.sidecar, p.statusAddr)
	filesBefore := len(userFiles(t, first))
	p.startApp()
	p.stop(budget)
	if len(userFiles(t, first)) <= filesBefore {
		t.Fatal("the app wrote no file; the test proves nothing")
	}
	if committed, err := vaultsim.ReadLedger(ledger); err != nil || len(committed) < 100 {
		t.Fatalf("the app committed %d transactions (%v); the test proves nothing", len(committed), err)
	}
	checkReplica(t, cfg, p.name, first, ledger)

	// Rescheduled on a new, empty volume (a fresh volume holds lost+found).
	second := filepath.Join(work, "volume-2", "data")
	if err := os.MkdirAll(filepath.Join(second, "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	p = startSidecar(t, s, "pod on an empty volume", second, ledger)
	failed := probeUntilReady(t, p.sidecar, p.statusAddr)
	checkRestored(t, "the startup probe passed", second, first, ledger)
	t.Logf("startup probe passed after %d failed probes, with the data folder restored", failed)
	p.startApp()
	p.stop(budget)
	checkReplica(t, cfg, p.name, second, ledger)
}

// TestRun_SidecarStandbyPromote: the standby StatefulSet. Its vwstream
// (NODE_ROLE=secondary) pulls the replica while the primary's pod writes, and
// its startup probe keeps failing, so the kubelet never starts the app beside
// a secondary. The primary's pod goes away; `vwstream promote` (kubectl exec)
// makes the standby the primary: its startup probe passes only then, with
// every transaction the old primary committed in the data folder, and the app
// started after it loses nothing.
func TestRun_SidecarStandbyPromote(t *testing.T) {
	vwstream, _ := binaries(t)
	s := testenv.NewS3(t)
	work := t.TempDir()
	ledger := filepath.Join(work, "ledger")
	primaryDir := filepath.Join(work, "zone-a", "data")
	standbyDir := filepath.Join(work, "zone-b", "data")
	createVault(t, primaryDir, 32)
	cfg := s3Config(t, s, primaryDir)
	budget := node.ShutdownBudget(cfg)

	primary := startSidecar(t, s, "primary", primaryDir, ledger)
	probeUntilReady(t, primary.sidecar, primary.statusAddr)
	primary.startApp()

	// The standby's volume is there, its data folder not yet; STATUS_FILE is
	// beside it, in a folder that must exist.
	if err := os.MkdirAll(filepath.Dir(standbyDir), 0o755); err != nil {
		t.Fatal(err)
	}
	standby := startSidecar(t, s, "standby", standbyDir, ledger, "NODE_ROLE=secondary")
	waitStatus(t, standby.sidecar, standby.statusAddr, "the first pull", func(doc *status.Status) bool {
		return doc.Status == status.StateOK && doc.DB != nil && doc.DB.TXIDReplicated > 0
	})
	if code := get(t, standby.statusAddr, "/readyz"); code != http.StatusOK {
		t.Fatalf("the standby's /readyz answers %d after its first pull", code)
	}
	if code := get(t, standby.statusAddr, startupProbe); code != http.StatusServiceUnavailable {
		t.Fatalf("the standby's startup probe answers %d; the kubelet would start the app beside a secondary", code)
	}
	time.Sleep(2 * time.Second) // the primary writes on, past the standby's pull
	primary.stop(budget)

	env := runEnv(s, standbyDir, "STATUS_ADDR="+standby.statusAddr, "NODE_ROLE=secondary")
	if code, out := command(t, env, vwstream, "promote"); code != 0 {
		t.Fatalf("vwstream promote: exit %d\n%s", code, out)
	}
	probeUntilReady(t, standby.sidecar, standby.statusAddr)
	checkRestored(t, "the promoted standby's startup probe passed", standbyDir, primaryDir, ledger)
	standby.startApp()
	standby.stop(budget)
	checkReplica(t, cfg, "promoted standby", standbyDir, ledger)
}

// In sidecar mode vwstream starts no Vaultwarden and has no loopback /alive to
// probe: VAULTWARDEN_ALIVE_URL names Vaultwarden's (the Compose service's), and
// its failing for UNHEALTHY_AFTER raises child_unhealthy like a supervised
// child's; answering again clears it.
func TestNode_SidecarProbesVaultwardenAliveURL(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	vw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/alive" || failing.Load() {
			http.Error(w, "database is locked", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, `"2026-12-02T00:00:00Z"`)
	}))
	t.Cleanup(vw.Close)
	s := testenv.NewS3(t)
	data := filepath.Join(t.TempDir(), "data")
	writtenVault(t, data, filepath.Join(t.TempDir(), "ledger"), 15, 10)
	cfg := s3Config(t, s, data, "VAULTWARDEN_ALIVE_URL="+vw.URL+"/alive", "UNHEALTHY_AFTER=1s")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := node.New(node.Options{Config: cfg, Logger: testLogger(t)}) // no command: a sidecar
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	waitReady(t, n, done)

	unhealthy := func(s status.Status) bool {
		for _, a := range s.Alerts {
			if a.Name == alert.ChildUnhealthy {
				return true
			}
		}
		return false
	}
	waitDoc(t, n, "child_unhealthy", unhealthy) // the second evaluation, 30 s after the first
	for _, a := range n.Status().Alerts {
		if a.Name == alert.ChildUnhealthy && !strings.Contains(a.Message, "503") {
			t.Errorf("alert message %q does not say what /alive answered", a.Message)
		}
	}
	failing.Store(false)
	waitDoc(t, n, "child_unhealthy cleared", func(s status.Status) bool { return !unhealthy(s) })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
