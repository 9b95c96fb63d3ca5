package update

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vwstream/vwstream/internal/docker"
)

// Lifecycle hooks: a label's value runs as `/bin/sh -c VALUE` inside the
// container, bounded by Options.HookTimeout. Watchtower's lifecycle labels are
// honoured too. A failing pre-check is logged; a failing pre-update skips the
// update (nothing is stopped); a failing post-update is reported, the new
// container stays.
const (
	HookPreCheck   = "pre-check"
	HookPreUpdate  = "pre-update"
	HookPostUpdate = "post-update"

	labelHookPrefix           = "vwstream.update."
	labelWatchtowerHookPrefix = "com.centurylinklabs.watchtower.lifecycle."
	// DefaultHookTimeout bounds one hook.
	DefaultHookTimeout = time.Minute
	hookShell          = "/bin/sh"
	maxHookOutput      = 4 << 10
)

// hookCommand is the command of hook in labels, "" when there is none.
func hookCommand(labels map[string]string, hook string) string {
	if c := strings.TrimSpace(labels[labelHookPrefix+hook]); c != "" {
		return c
	}
	return strings.TrimSpace(labels[labelWatchtowerHookPrefix+hook])
}

// runHook runs hook inside the running container id when its labels name
// one; ran is false when they do not. The error says the exit code and the
// output's last line.
func (o Options) runHook(ctx context.Context, id string, labels map[string]string, hook string) (ran bool, err error) {
	cmd := hookCommand(labels, hook)
	if cmd == "" {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, o.HookTimeout)
	defer cancel()
	var out limited
	code, err := o.Docker.Exec(ctx, id, docker.ExecOptions{Cmd: []string{hookShell, "-c", cmd}}, &out, &out)
	if err != nil {
		return true, fmt.Errorf("%s hook: %w", hook, err)
	}
	if code != 0 {
		last := strings.TrimSpace(out.String())
		if i := strings.LastIndexByte(last, '\n'); i >= 0 {
			last = last[i+1:]
		}
		for _, sec := range o.Secrets {
			if sec != "" {
				last = strings.ReplaceAll(last, sec, "(hidden)")
			}
		}
		if last != "" {
			last = ": " + last
		}
		return true, fmt.Errorf("%s hook exited %d%s", hook, code, last)
	}
	return true, nil
}

// limited keeps the last maxHookOutput bytes written to it.
type limited struct{ b bytes.Buffer }

func (l *limited) Write(p []byte) (int, error) {
	l.b.Write(p)
	if over := l.b.Len() - maxHookOutput; over > 0 {
		l.b.Next(over)
	}
	return len(p), nil
}

func (l *limited) String() string { return l.b.String() }
