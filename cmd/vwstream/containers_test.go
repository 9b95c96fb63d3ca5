package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vault"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// TestCheck_DockerEngine: with a label variable set, check reports the
// Engine; with its socket missing, check fails on that line and backup and
// run refuse to start, the data folder untouched.
func TestCheck_DockerEngine(t *testing.T) {
	testenv.Docker(t)
	dir := t.TempDir()
	v, err := vaultsim.Create(filepath.Join(dir, "data"), vaultsim.Options{Seed: 1, Size: "small"})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	before, _ := vault.Entries(v.Dir) // the data; vwstream's own lock file may appear
	env := []string{"LOG_LEVEL=error", "DATA_FOLDER=" + v.Dir, "LOCAL_TARGET=" + filepath.Join(dir, "backup"), "BACKUP_STOP_DURING_BACKUP_LABEL=true"}
	code, out, stderr := invoke(t, env, "check")
	if l := lineWith(out, "docker engine"); code != exitOK || !strings.HasPrefix(l, "ok") || !strings.Contains(l, "Engine ") || !strings.Contains(l, "API ") {
		t.Fatalf("exit %d, engine line %q\n%s%s", code, l, out, stderr)
	}

	missing := "unix://" + filepath.Join(dir, "no-such.sock")
	code, out, _ = invoke(t, append(env, "DOCKER_HOST="+missing), "check")
	if l := lineWith(out, "docker engine"); code != exitFailure || !strings.HasPrefix(l, "FAIL") || !strings.Contains(l, "no socket at") {
		t.Fatalf("exit %d, engine line %q\n%s", code, l, out)
	}
	code, out, stderr = invoke(t, append(env, "DOCKER_HOST="+missing), "backup")
	if code == exitOK || !strings.Contains(stderr, "no socket at") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("backup without the Engine: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = invoke(t, append(env, "DOCKER_HOST="+missing, "BACKUP_ENABLED=true"), "run")
	if code == exitOK || !strings.Contains(stderr, "no socket at") {
		t.Fatalf("run without the Engine: exit %d\n%s%s", code, out, stderr)
	}
	if after, _ := vault.Entries(v.Dir); len(after) != len(before) {
		t.Fatalf("data folder changed: %d files, was %d", len(after), len(before))
	}

	// No label variable: no Engine line, nothing needed.
	_, out, _ = invoke(t, []string{"LOG_LEVEL=error", "DATA_FOLDER=" + v.Dir, "LOCAL_TARGET=" + filepath.Join(dir, "backup"), "DOCKER_HOST=" + missing}, "check")
	if lineWith(out, "docker engine") != "" {
		t.Fatalf("engine checked without container operations:\n%s", out)
	}
}

// TestCheck_DockerSocketPermission: run as a user outside the socket's
// group, check says so in one line.
func TestCheck_DockerSocketPermission(t *testing.T) {
	testenv.Docker(t)
	if os.Getuid() != 0 {
		t.Skip("runs check as another user, which needs root")
	}
	dir, err := os.MkdirTemp("", "vwstream-test-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "vwstream")
	b, err := os.ReadFile(testenv.Binaries(t, "github.com/vwstream/vwstream/cmd/vwstream")[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "check")
	cmd.Env = []string{"LOG_LEVEL=error", "DATA_FOLDER=" + dir, "LOCAL_TARGET=" + filepath.Join(dir, "backup"), "BACKUP_STOP_DURING_BACKUP_LABEL=true"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, _ := cmd.CombinedOutput()
	if l := lineWith(string(out), "docker engine"); !strings.HasPrefix(l, "FAIL") || !strings.Contains(l, "permission denied") {
		t.Fatalf("engine line %q\n%s", l, out)
	}
}
