package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"

	"github.com/vwstream/vwstream/internal/config"
)

// child is the supervised program (Vaultwarden's /start.sh, or a stand-in).
type child struct {
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	err      error         // Wait's result, valid after done
	stopping atomic.Bool   // we asked it to stop: its exit is not a reason to shut down
}

// startChild starts argv in its own process group, so a signal meant for it can
// be sent to everything it started, and a Ctrl-C on a terminal reaches vwstream
// first (which then stops it in order).
// cred, when set, is the user and group it runs as (RUN_AS).
func startChild(argv, env []string, stdout, stderr io.Writer, cred *syscall.Credential) (*child, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// pid is the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the process has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the child's process group and waits until it exits or
// ctx ends; then it sends SIGKILL. It returns the child's exit error, nil for a
// clean exit (0, or ended by our SIGTERM).
func (c *child) stop(ctx context.Context) error {
	c.stopping.Store(true)
	if !c.exited() {
		_ = syscall.Kill(-c.pid(), syscall.SIGTERM)
		select {
		case <-c.done:
		case <-ctx.Done():
			_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
			<-c.done
			return fmt.Errorf("child %d did not stop within its budget and was killed", c.pid())
		}
	}
	return c.exitError()
}

// exitError is nil for exit code 0 or death by our SIGTERM, else a readable error.
func (c *child) exitError() error {
	<-c.done
	var ee *exec.ExitError
	if !errors.As(c.err, &ee) {
		return c.err
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
		return nil
	}
	return &ChildExitError{Code: ee.ExitCode(), State: ee.String()}
}

// ChildExitError is a supervised program that ended in failure.
type ChildExitError struct {
	Code  int    // exit code, -1 when killed by a signal
	State string // "exit status 3", "signal: killed"
}

func (e *ChildExitError) Error() string { return "child " + e.State }

// childCredential is the credential the child starts with for RUN_AS: nil
// when unset; an error when vwstream is not root, which cannot switch users.
func childCredential(runAs *config.UserGroup) (*syscall.Credential, error) {
	if runAs == nil {
		return nil, nil
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("RUN_AS=%d:%d needs vwstream to run as root to start the child as that user", runAs.UID, runAs.GID)
	}
	return &syscall.Credential{Uid: runAs.UID, Gid: runAs.GID, Groups: []uint32{}}, nil
}
