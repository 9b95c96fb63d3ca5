package dbrepl

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/vaultsim"
)

// TestReplicator_SurvivesKillS3 is TestReplicator_SurvivesKill against the S3
// test server (versitygw) instead of a local folder: SIGKILL at random moments
// while the workload writes, then a restore from the bucket holds every
// transaction committed more than (sync interval + 1 s) before the kill, as a
// gap-free prefix. It runs 5 cycles, 50 with VWSTREAM_SOAK=1;
// VWSTREAM_DBREPL_S3_CRASH_CYCLES sets the number.
func TestReplicator_SurvivesKillS3(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a child process")
	}
	t.Parallel() // overlaps with the outage tests, which mostly wait
	cycles := 5
	if os.Getenv("VWSTREAM_SOAK") != "" {
		cycles = 50
	}
	if n, err := strconv.Atoi(os.Getenv("VWSTREAM_DBREPL_S3_CRASH_CYCLES")); err == nil && n > 0 {
		cycles = n
	}
	const syncInterval = time.Second
	store, env := newS3(t, "vaultwarden")

	work := t.TempDir()
	bin := filepath.Join(work, "crashchild")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.Command(gobin, "build", "-o", bin, "./testdata/crashchild").CombinedOutput(); err != nil {
		t.Fatalf("build crashchild: %v\n%s", err, out)
	}
	dataDir := filepath.Join(work, "data")
	ledger := filepath.Join(work, "ledger")
	// The child reads the server's address and keys from the same
	// VWSTREAM_TEST_S3_* variables testenv used.
	storeURL := "s3://" + env.Bucket + "/vaultwarden"

	for cycle := range cycles {
		killAt := runAndKill(t, bin, dataDir, storeURL, ledger, syncInterval, int64(cycle+1))

		out := filepath.Join(work, fmt.Sprintf("restore-%d", cycle), vaultsim.DBName)
		res, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("cycle %d: restore: %v", cycle, err)
		}
		cutoff := killAt.Add(-(syncInterval + time.Second))
		rep, err := vaultsim.Verify(out, ledger, cutoff)
		if err != nil || !rep.OK() {
			t.Fatalf("cycle %d: verify: %v: %+v", cycle, err, rep)
		}
		t.Logf("cycle %d: restored txid %d, %d seqs (ledger %d, %d required before cutoff)",
			cycle, res.TXID, rep.DBSeqs, rep.LedgerEntries, rep.Required)
	}
}
