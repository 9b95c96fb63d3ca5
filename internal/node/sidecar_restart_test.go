package node_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// walSalts reads the salts of a WAL's header; SQLite changes them when it
// restarts the WAL from its beginning.
func walSalts(t *testing.T, path string) [8]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var hdr [32]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		t.Fatalf("read WAL header: %v", err)
	}
	return [8]byte(hdr[16:24])
}

// walRestarted waits until the WAL at path has restarted (its salts changed).
func walRestarted(t *testing.T, path string, timeout time.Duration) {
	t.Helper()
	first := walSalts(t, path)
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if walSalts(t, path) != first {
			return
		}
	}
	t.Fatalf("SQLite did not restart the WAL within %s", timeout)
}

// TestRun_SidecarRestartsLeaveNoHoles: in sidecar mode (no child) the writer
// does not stop with vwstream. A writer with SQLite's default automatic
// checkpoint commits numbered rows at 50 tx/s while `vwstream run` is stopped
// (SIGTERM and kill -9 in turn) and started again on the same folder, staying
// down each time until SQLite has checkpointed and restarted its WAL, so the
// frames written after vwstream's last capture are no longer in the WAL when
// it starts again. After the cycles the writer stops, a
// last run catches up, and the replica must hold every committed row: a row
// missing while later ones are present is a hole.
// It runs 10 cycles, 30 with VWSTREAM_SOAK=1; VWSTREAM_SIDECAR_CYCLES sets the number.
func TestRun_SidecarRestartsLeaveNoHoles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes for a minute or more")
	}
	cycles := 10
	if os.Getenv("VWSTREAM_SOAK") != "" {
		cycles = 30
	}
	if n, err := strconv.Atoi(os.Getenv("VWSTREAM_SIDECAR_CYCLES")); err == nil && n > 0 {
		cycles = n
	}
	vwstream, vwload := binaries(t)
	s := testenv.NewS3(t)
	work := t.TempDir()
	data := filepath.Join(work, "data")
	createVault(t, data, 21)
	// A long TTL: every restart takes over the lease its predecessor left.
	cfg := s3Config(t, s, data, "LEASE_TTL=120s", "LEASE_RENEW_INTERVAL=1s")
	ledger := filepath.Join(work, "ledger")
	statusAddr := freeAddr(t)
	env := runEnv(s, data, "STATUS_ADDR="+statusAddr, "LEASE_TTL=120s", "LEASE_RENEW_INTERVAL=1s")

	writer := startProc(t, "vwload run", os.Environ(), vwload, "run", "--dir", data, "--rate", "50",
		"--attachments", "0", "--sends", "0", "--ledger", ledger)

	run := func(i int) *proc {
		p := startProc(t, fmt.Sprintf("vwstream run #%d", i), env, vwstream, "run")
		waitStatus(t, p, statusAddr, "replication", replicating)
		return p
	}
	p := run(0)
	repairs := 0
	for cycle := range cycles {
		time.Sleep(2*time.Second + rand.N(2*time.Second))
		sig := syscall.SIGTERM
		if cycle%2 == 1 {
			sig = syscall.SIGKILL
		}
		p.signal(sig)
		p.wait(60 * time.Second)
		repairs += strings.Count(p.stderr.String(), "continuity")
		// Down until SQLite's automatic checkpoint (every 1,000 pages or so)
		// has copied the WAL into the database and the next commit restarted
		// the WAL (new salts), then start again at once: the new WAL is still
		// shorter than the old one, as after any short outage.
		walRestarted(t, filepath.Join(data, vaultsim.DBName+"-wal"), 30*time.Second)
		if writer.exited() {
			t.Fatalf("the writer stopped: %s", writer.stderr.String())
		}
		p = run(cycle + 1)
	}
	writer.signal(syscall.SIGTERM)
	if code := writer.wait(30 * time.Second); code != 0 {
		t.Fatalf("writer exited with %d: %s", code, writer.stderr.String())
	}
	time.Sleep(2 * time.Second)
	p.signal(syscall.SIGTERM)
	if code := p.wait(60 * time.Second); code != 0 {
		t.Fatalf("last vwstream run exited with code %d after SIGTERM, want 0", code)
	}
	repairs += strings.Count(p.stderr.String(), "continuity")

	rep, err := vaultsim.Verify(filepath.Join(restoreAll(t, cfg), vaultsim.DBName), ledger, time.Time{})
	t.Logf("%d cycles: %d rows committed, %d in the replica, %d missing (first %d), first hole %d; %d start-up repairs logged",
		cycles, rep.LedgerEntries, rep.DBSeqs, rep.Missing, rep.FirstMissing, rep.FirstHole, repairs)
	if err != nil {
		t.Fatalf("the replica lost committed rows across sidecar restarts: %v", err)
	}
	if rep.LedgerEntries < 50*cycles {
		t.Fatalf("only %d rows were committed; the test proves nothing", rep.LedgerEntries)
	}
}
