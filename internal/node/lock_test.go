package node_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/node"
	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vault"
)

// TestRun_SecondProcessOnSameFolderRefused: while `vwstream run` lives, a
// second one on the same data folder refuses at once, with one line naming the
// first one's PID and a non-zero exit, without touching the lease (the first
// keeps renewing it, unfenced). After kill -9 of the first, the kernel has
// released the folder lock, and a new run takes over the lease at once. The
// lock file is never uploaded.
func TestRun_SecondProcessOnSameFolderRefused(t *testing.T) {
	vwstream, _ := binaries(t)
	s := testenv.NewS3(t)
	work := t.TempDir()
	data := filepath.Join(work, "data")
	createVault(t, data, 31)
	cfg := s3Config(t, s, data, "LEASE_TTL=120s", "LEASE_RENEW_INTERVAL=1s")
	statusAddr := testenv.FreeAddr(t)
	env := runEnv(s, data, "STATUS_ADDR="+statusAddr, "LEASE_TTL=120s", "LEASE_RENEW_INTERVAL=1s")

	first := startProc(t, "vwstream run (first)", env, vwstream, "run")
	before := waitStatus(t, first, statusAddr, "replication", replicating)

	secondEnv := append(append([]string{}, env...), "STATUS_ADDR="+testenv.FreeAddr(t), "STATUS_FILE="+filepath.Join(work, "second.json"))
	code, out := command(t, secondEnv, vwstream, "run")
	if code == 0 {
		t.Fatalf("a second run on a data folder in use exited 0; output:\n%s", out)
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "vwstream run:") {
			lines = append(lines, l)
		}
	}
	pid := strconv.Itoa(first.cmd.Process.Pid)
	if len(lines) != 1 || !strings.Contains(lines[0], node.ErrFolderInUse.Error()) || !strings.Contains(lines[0], "PID "+pid) {
		t.Fatalf("want one line saying the folder is held by PID %s, got %q; output:\n%s", pid, lines, out)
	}
	if strings.Contains(out, "lease") {
		t.Errorf("the refused run went as far as the lease:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(work, "second.json")); err == nil {
		t.Error("the refused run wrote its status file")
	}

	// The first one still holds its lease, renewed past the refused attempt.
	time.Sleep(3 * time.Second)
	after := waitStatus(t, first, statusAddr, "lease still held", func(d *status.Status) bool { return replicating(d) && d.Lease != nil && d.Lease.Ours })
	if after.Lease.Holder != before.Lease.Holder {
		t.Fatalf("lease holder changed from %q to %q", before.Lease.Holder, after.Lease.Holder)
	}

	// kill -9: the kernel releases the lock; a new run starts at once.
	first.signal(syscall.SIGKILL)
	first.wait(30 * time.Second)
	next := startProc(t, "vwstream run (after kill -9)", env, vwstream, "run")
	waitStatus(t, next, statusAddr, "replication after the kill", replicating)
	next.signal(syscall.SIGTERM)
	if code := next.wait(60 * time.Second); code != 0 {
		t.Fatalf("run after the kill exited %d after SIGTERM, want 0", code)
	}

	restored := restoreAll(t, cfg)
	if _, err := os.Stat(filepath.Join(restored, vault.LockFile)); err == nil {
		t.Fatalf("%s was uploaded and restored", vault.LockFile)
	}
}
