package vaultsim_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// vwload builds cmd/vwload once per test binary.
func vwload(t *testing.T) string {
	return testenv.Binaries(t, "github.com/vwstream/vwstream/cmd/vwload")[0]
}

// waitLedger waits until the ledger has at least n complete lines.
func waitLedger(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(path)
		if strings.Count(string(b), "\n") >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("ledger %s did not reach %d lines", path, n)
}

// TestVwload_KillRun kills `vwload run` with SIGKILL mid-write, twice, and checks
// that the surviving database holds exactly what the ledger says was committed.
func TestVwload_KillRun(t *testing.T) {
	bin := vwload(t)
	v := createVault(t, vaultsim.Options{Seed: 14})
	v.Close()
	ledger := filepath.Join(t.TempDir(), "ledger")
	for round := 1; round <= 2; round++ {
		cmd := exec.Command(bin, "run", "--dir", v.Dir, "--rate", "-1", "--writers", "4",
			"--attachments", "0.2", "--ledger", ledger, "--seed", fmt.Sprint(round))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitLedger(t, ledger, 150*round)
		cmd.Process.Kill()
		cmd.Wait()
		r, err := vaultsim.Verify(v.DBPath(), ledger, time.Time{})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if r.DBSeqs < 150*round {
			t.Fatalf("round %d: report %+v; want at least %d seqs", round, r, 150*round)
		}
		probs, err := vaultsim.CheckAttachments(v.Dir)
		if err != nil {
			t.Fatal(err)
		}
		// At most one upload per writer and kill can have been cut short.
		if len(probs) > vaultsim.MaxWriters*round {
			t.Fatalf("round %d: %d attachment problems, want at most %d: %+v", round, len(probs), vaultsim.MaxWriters*round, probs)
		}
		t.Logf("round %d: %d seqs, %d unledgered, %d partial attachments", round, r.DBSeqs, r.Unledgered, len(probs))
	}
}

// TestVwload_ServeStopsCleanly runs `vwload serve`, checks /alive, sends SIGTERM
// and expects exit 0, every committed seq in the ledger, and the WAL folded back.
func TestVwload_ServeStopsCleanly(t *testing.T) {
	bin := vwload(t)
	v := createVault(t, vaultsim.Options{Seed: 15})
	v.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ledger := filepath.Join(t.TempDir(), "ledger")
	cmd := exec.Command(bin, "serve", "--dir", v.Dir, "--addr", addr, "--write-rate", "200", "--ledger", ledger)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/alive")
		if err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vwload serve never answered /alive: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitLedger(t, ledger, 50)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("vwload serve after SIGTERM: %v, want exit 0", err)
	}
	r, err := vaultsim.Verify(v.DBPath(), ledger, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Unledgered != 0 {
		t.Fatalf("graceful stop left %d committed seqs out of the ledger", r.Unledgered)
	}
	if _, err := os.Stat(v.DBPath() + "-wal"); err == nil {
		t.Fatal("db.sqlite3-wal left behind: the database was not closed cleanly")
	}
}

func TestVwload_BadFlagsExit2(t *testing.T) {
	bin := vwload(t)
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"run", "--rate", "fast", "--dir", "x"},
		{"run"},
		{"init", "--dir", t.TempDir(), "--size", "huge"},
		{"verify", "--dir", t.TempDir()},
		{"run", "--dir", "x", "--writers", "9"},
	} {
		cmd := exec.Command(bin, args...)
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 2 {
			t.Errorf("vwload %q: exit %v (%v), want 2", args, cmd.ProcessState.ExitCode(), err)
		}
		if lines := strings.Count(strings.TrimSpace(string(out)), "\n"); lines != 0 || len(out) == 0 {
			t.Errorf("vwload %q printed %q, want one line", args, out)
		}
	}
}
