package dbrepl

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// TestReplicator_SurvivesKill runs a replicating process with a Vaultwarden-
// shaped workload, kills it with SIGKILL at a random moment, restores the
// replica into a fresh folder and checks it against the workload's ledger:
// integrity ok, a gap-free prefix, and every transaction committed more than
// (sync interval + 1 s) before the kill present. The same data folder is
// restarted each cycle, so recovery after a crash is exercised too.
// It runs 20 cycles, 200 with VWSTREAM_SOAK=1; VWSTREAM_DBREPL_CRASH_CYCLES sets
// the number.
func TestReplicator_SurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a child process")
	}
	cycles := crashCycles(20, 200, "VWSTREAM_DBREPL_CRASH_CYCLES")
	work := t.TempDir()
	if os.Getenv("VWSTREAM_DBREPL_CRASH_KEEP") != "" {
		// Keep the folders of a failing run for inspection.
		var err error
		if work, err = os.MkdirTemp("", "dbrepl-crash-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("work folder kept: %s", work)
	}
	storeDir := filepath.Join(work, "store")
	store, err := objstore.NewLocal(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	killCycles(t, cycles, work, store, storeDir)
}

// crashCycles is def kill cycles, soak with VWSTREAM_SOAK set, or the number
// in the variable env.
func crashCycles(def, soak int, env string) int {
	n := def
	if os.Getenv("VWSTREAM_SOAK") != "" {
		n = soak
	}
	if v, err := strconv.Atoi(os.Getenv(env)); err == nil && v > 0 {
		n = v
	}
	return n
}

// crashSyncInterval is the child's LITESTREAM_SYNC_INTERVAL; the loss bound is
// one interval plus a second.
const crashSyncInterval = time.Second

// killCycles builds the crash child and runs cycles of it against storeArg (a
// folder or s3://bucket/prefix) on one data folder in work: each is killed
// with SIGKILL, then the replica is restored from store into a fresh file and
// checked against the workload's ledger.
func killCycles(t *testing.T, cycles int, work string, store objstore.Store, storeArg string) {
	t.Helper()
	bin := filepath.Join(work, "crashchild")
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gobin, "build", "-o", bin, "./testdata/crashchild").CombinedOutput(); err != nil {
		t.Fatalf("build crashchild: %v\n%s", err, out)
	}
	dataDir := filepath.Join(work, "data")
	ledger := filepath.Join(work, "ledger")
	for cycle := range cycles {
		killAt := runAndKill(t, bin, dataDir, storeArg, ledger, crashSyncInterval, int64(cycle+1))

		out := filepath.Join(work, fmt.Sprintf("restore-%d", cycle), vaultsim.DBName)
		res, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("cycle %d: restore: %v", cycle, err)
		}
		cutoff := killAt.Add(-(crashSyncInterval + time.Second))
		rep, err := vaultsim.Verify(out, ledger, cutoff)
		if err != nil || !rep.OK() {
			t.Fatalf("cycle %d: verify: %v: %+v", cycle, err, rep)
		}
		t.Logf("cycle %d: restored txid %d, %d seqs (ledger %d, %d required before cutoff)",
			cycle, res.TXID, rep.DBSeqs, rep.LedgerEntries, rep.Required)
	}
}

// runAndKill starts the child, waits until it replicates, lets it write for
// 0.5-3 s and kills it with SIGKILL. It returns the instant of the kill.
func runAndKill(t *testing.T, bin, dataDir, storeDir, ledger string, syncInterval time.Duration, seed int64) time.Time {
	t.Helper()
	cmd := exec.Command(bin, "-dir", dataDir, "-store", storeDir, "-ledger", ledger,
		"-sync", syncInterval.String(), "-seed", strconv.FormatInt(seed, 10))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if !strings.HasPrefix(line, "ready") {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("child did not start: %q: %s", line, stderr.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child did not start in 60s: %s", stderr.String())
	}
	time.Sleep(500*time.Millisecond + rand.N(2500*time.Millisecond))
	killAt := time.Now()
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if strings.Contains(stderr.String(), "crashchild:") {
		t.Fatalf("child failed before the kill: %s", stderr.String())
	}
	return killAt
}
