package node_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/testenv"
)

// maxResidentMiB is the resident memory a started node may keep: the smallest
// hosts run Vaultwarden and vwstream in 512 MB.
const maxResidentMiB = 64

// procStatusMiB reads the memory fields of a running process's
// /proc/PID/status (VmRSS, RssAnon, RssFile, ...) in MiB.
func procStatusMiB(t *testing.T, pid int) map[string]float64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasSuffix(rest, " kB") {
			continue
		}
		if kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64); err == nil {
			out[name] = kb / 1024
		}
	}
	if _, ok := out["VmRSS"]; !ok {
		t.Fatalf("no VmRSS in /proc/%d/status", pid)
	}
	return out
}

// evictPageCache drops the program file's clean pages from the page cache, so
// each measured process starts as from a cold binary: its program pages are
// then the ones it faults in, not whatever earlier runs of the same file left
// cached around them (the kernel maps cached neighbours of every page fault).
func evictPageCache(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A binary just built has dirty pages, which the kernel cannot drop.
	if err := f.Sync(); err != nil {
		t.Fatalf("sync %s: %v", path, err)
	}
	const fadvDontNeed = 4 // POSIX_FADV_DONTNEED
	if _, _, errno := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, fadvDontNeed, 0, 0); errno != 0 {
		t.Fatalf("fadvise %s: %v", path, errno)
	}
}

// TestRun_ResidentMemoryAfterStart: after start-up has settled, `vwstream run`
// keeps at most maxResidentMiB resident on every start path: a new bucket
// with a passphrase (the key is created, scrypt at its real cost), the same
// bucket again (the key is unwrapped), a secondary, a new bucket given
// ENCRYPTION_KEY with a passphrase (the key is adopted, wrapped with scrypt)
// and the key alone. Measured from /proc/PID/status (VmRSS), the highest of
// a few readings a few seconds after the node reported itself started, each
// process started from a cold binary. About 38 MiB of it is program pages;
// the memory the process itself holds (RssAnon) is logged beside it.
func TestRun_ResidentMemoryAfterStart(t *testing.T) {
	vwstream, _ := binaries(t)
	work := t.TempDir()
	statusAddr := testenv.FreeAddr(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	sA, sB := testenv.NewS3(t), testenv.NewS3(t)
	dataA, dataB, dataC := filepath.Join(work, "a"), filepath.Join(work, "b"), filepath.Join(work, "c")
	createVault(t, dataA, 41)
	createVault(t, dataC, 42)
	noPass := "ENCRYPTION_PASSPHRASE="
	primary := func(d *status.Status) bool { return replicating(d) }
	secondary := func(d *status.Status) bool { return d.Role == config.RoleSecondary && d.Status == status.StateOK }

	paths := []struct {
		name  string
		env   []string
		ready func(*status.Status) bool
	}{
		{"new bucket, passphrase", runEnv(sA, dataA, "STATUS_ADDR="+statusAddr), primary},
		{"existing bucket, passphrase", runEnv(sA, dataA, "STATUS_ADDR="+statusAddr), primary},
		{"secondary, passphrase", runEnv(sA, dataB, "STATUS_ADDR="+statusAddr, "NODE_ROLE=secondary"), secondary},
		{"new bucket, ENCRYPTION_KEY with passphrase", runEnv(sB, dataC, "STATUS_ADDR="+statusAddr, "ENCRYPTION_KEY="+id.String()), primary},
		{"existing bucket, ENCRYPTION_KEY alone", runEnv(sB, dataC, "STATUS_ADDR="+statusAddr, "ENCRYPTION_KEY="+id.String(), noPass), primary},
	}
	var report []string
	for _, p := range paths {
		evictPageCache(t, vwstream)
		proc := startProc(t, "vwstream run ("+p.name+")", p.env, vwstream, "run")
		waitStatus(t, proc, statusAddr, "start-up", p.ready)
		time.Sleep(3 * time.Second)
		var rss, anon, file float64
		for range 4 {
			m := procStatusMiB(t, proc.cmd.Process.Pid)
			if m["VmRSS"] > rss {
				rss, anon, file = m["VmRSS"], m["RssAnon"], m["RssFile"]+m["RssShmem"]
			}
			time.Sleep(500 * time.Millisecond)
		}
		proc.signal(syscall.SIGTERM)
		if code := proc.wait(60 * time.Second); code != 0 {
			t.Fatalf("%s: exit %d after SIGTERM", p.name, code)
		}
		report = append(report, fmt.Sprintf("%s: %.1f MiB (anonymous %.1f, program and files %.1f)", p.name, rss, anon, file))
		if rss > maxResidentMiB {
			t.Errorf("%s: %.1f MiB resident after start-up, want <= %d", p.name, rss, maxResidentMiB)
		}
	}
	t.Log("resident memory after start-up: " + strings.Join(report, "; "))
}
