//go:build linux

package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/vwstream/vwstream/internal/testenv"
)

// asNobody runs a command as uid/gid 65534.
func asNobody(cmd *exec.Cmd) *exec.Cmd {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	return cmd
}

// A process of the same unprivileged user cannot read vwstream's secrets
// from /proc/<pid>/environ, while it can read those of an ordinary process
// (the control): vwstream marks itself non-dumpable at start.
func TestUndumpable_EnvironClosedToSameUser(t *testing.T) {
	if os.Getuid() != 0 {
		if testenv.InCI() {
			t.Fatal("this test runs processes as another user: it needs root")
		}
		t.Skip("needs root to run processes as another user")
	}
	// The binary, where uid 65534 may execute it.
	dir, err := os.MkdirTemp("", "vwstream-dumpable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(testenv.Binaries(t, "github.com/vwstream/vwstream/cmd/vwstream")[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "vwstream")
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}

	// A node that takes the promote request and never answers keeps the
	// promote process alive with PROMOTE_TOKEN in its environment.
	reached := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached <- struct{}{}
		<-release
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	const secret = "promote-secret-5c1d0e7a9b"
	env := []string{"PROMOTE_TOKEN=" + secret, "STATUS_ADDR=" + srv.Listener.Addr().String(), "DATA_FOLDER=" + dir, "HOME=" + dir}

	start := func(argv ...string) *exec.Cmd {
		cmd := asNobody(exec.Command(argv[0], argv[1:]...))
		cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = env, dir, io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	readEnviron := func(pid int) ([]byte, error) {
		cmd := asNobody(exec.Command("cat", "/proc/"+strconv.Itoa(pid)+"/environ"))
		return cmd.Output()
	}

	vw := start(bin, "promote")
	<-reached
	if out, err := readEnviron(vw.Process.Pid); err == nil || bytes.Contains(out, []byte(secret)) {
		t.Fatalf("uid 65534 read vwstream's environment: %v, %d bytes", err, len(out))
	}
	control := start("sleep", "60")
	if out, err := readEnviron(control.Process.Pid); err != nil || !bytes.Contains(out, []byte(secret)) {
		t.Fatalf("control: uid 65534 cannot read its own ordinary process's environment: %v", err)
	}
}
