package node_test

// The sidecar mode of `vwstream run` (no command), driven the way the kubelet
// drives a native sidecar in deploy/kubernetes and deploy/helm.

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/node"
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
	get := func(path string) int {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			t.Fatalf("%s exited with code %d before its startup probe passed", p.name, p.code)
		}
		code := get(startupProbe)
		if code == http.StatusOK {
			return failed
		}
		failed++
		if code != 0 {
			if live := get("/healthz"); live != http.StatusOK {
				t.Fatalf("%s: /healthz answered %d while starting; the kubelet would restart it", p.name, live)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %s did not pass within 90 s", p.name, startupProbe)
	return failed
}

// TestRun_SidecarLikeKubelet: a pod's life as the kubelet runs it. vwstream
// (no command) is started first and probed until its startup probe passes;
// only then the app (the stand-in) starts, writing 100 tx/s and attachments.
// The pod stops: SIGTERM to the app, and once it exited, SIGTERM to vwstream,
// which must exit 0 within the shutdown budget (terminationGracePeriodSeconds
// is at least that) with everything committed in S3. Then the pod is
// rescheduled on an empty volume: the startup probe passes only once the data
// folder holds every committed transaction, and a second life loses nothing
// either.
func TestRun_SidecarLikeKubelet(t *testing.T) {
	vwstream, vwload := binaries(t)
	s := testenv.NewS3(t)
	work := t.TempDir()
	ledger := filepath.Join(work, "ledger")
	first := filepath.Join(work, "volume-1", "data")
	createVault(t, first, 31)
	cfg := s3Config(t, s, first)
	budget := node.ShutdownBudget(cfg)

	// pod runs one pod life on the data folder dir and returns once both
	// containers have stopped; ready runs when the startup probe has passed,
	// before the app starts.
	pod := func(name, dir string, ready func(failedProbes int)) {
		t.Helper()
		statusAddr, aliveAddr := freeAddr(t), freeAddr(t)
		sidecar := startProc(t, name+": vwstream run", runEnv(s, dir, "STATUS_ADDR="+statusAddr), vwstream, "run")
		ready(probeUntilReady(t, sidecar, statusAddr))
		filesBefore := len(userFiles(t, dir))
		app := startProc(t, name+": app", os.Environ(), vwload, "serve", "--dir", dir, "--addr", aliveAddr,
			"--write-rate", "100", "--ledger", ledger)
		time.Sleep(4 * time.Second)
		if sidecar.exited() {
			t.Fatalf("%s: vwstream exited with code %d while the app ran", name, sidecar.code)
		}
		app.signal(syscall.SIGTERM)
		if code := app.wait(30 * time.Second); code != 0 {
			t.Fatalf("%s: the app exited with code %d after SIGTERM", name, code)
		}
		stopAt := time.Now()
		sidecar.signal(syscall.SIGTERM)
		if code := sidecar.wait(budget); code != 0 {
			t.Fatalf("%s: vwstream exited with code %d after SIGTERM, want 0", name, code)
		}
		t.Logf("%s: vwstream stopped %s after its SIGTERM (budget %s)", name, time.Since(stopAt).Round(time.Millisecond), budget)
		if len(userFiles(t, dir)) <= filesBefore {
			t.Fatalf("%s: the app wrote no file; the test proves nothing", name)
		}
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

	pod("pod on an existing volume", first, func(int) {})
	committed, err := vaultsim.ReadLedger(ledger)
	if err != nil || len(committed) < 100 {
		t.Fatalf("the first pod committed %d transactions (%v); the test proves nothing", len(committed), err)
	}

	// Rescheduled on a new, empty volume (a fresh volume holds lost+found).
	second := filepath.Join(work, "volume-2", "data")
	if err := os.MkdirAll(filepath.Join(second, "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	pod("pod on an empty volume", second, func(failed int) {
		rep, err := vaultsim.Verify(filepath.Join(second, "db.sqlite3"), ledger, time.Time{})
		if err != nil {
			t.Fatalf("the startup probe passed before the data folder was restored: %v (%+v)", err, rep)
		}
		if got := userFiles(t, second); len(got) < len(userFiles(t, first)) {
			t.Fatalf("the startup probe passed with %d of %d files restored", len(got), len(userFiles(t, first)))
		}
		t.Logf("startup probe passed after %d failed probes, with the data folder restored", failed)
	})
}
