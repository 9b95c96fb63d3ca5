package quiesce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/vwstream/vwstream/internal/docker"
)

// runCommands runs, in each running container in scope (sorted by name),
// the commands of the given labels. With stopAtFirst (pre commands: the
// snapshot is aborted) the first failure ends it; otherwise (post commands)
// all run and their failures are joined.
func (o Options) runCommands(ctx context.Context, running []docker.Container, labels []string, stopAtFirst bool) error {
	cs := append([]docker.Container(nil), running...)
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name() < cs[j].Name() })
	var errs []error
	for _, c := range cs {
		if c.State != "running" || !o.inScope(c) {
			continue
		}
		for _, label := range labels {
			cmd := strings.TrimSpace(c.Labels[label])
			if cmd == "" {
				continue
			}
			if err := o.runCommand(ctx, c, label, cmd); err != nil {
				if stopAtFirst {
					return err
				}
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// inScope applies EXEC_LABEL.
func (o Options) inScope(c docker.Container) bool {
	return o.ExecLabel == "" || c.Labels[LabelExecLabel] == o.ExecLabel || c.Labels[LabelOwnExecLabel] == o.ExecLabel
}

// runCommand runs one label's command with /bin/sh -c inside c, logging its
// output line by line with the secrets scrubbed.
func (o Options) runCommand(ctx context.Context, c docker.Container, label, cmd string) error {
	name := c.Name()
	log := o.Logger.With("container", name, "label", label)
	log.Info("running container command")
	stdout := &lineLogger{log: log, stream: "stdout", secrets: o.Secrets}
	stderr := &lineLogger{log: log, stream: "stderr", secrets: o.Secrets}
	code, err := o.Docker.Exec(ctx, c.ID, docker.ExecOptions{Cmd: []string{DefaultCommandShell, "-c", cmd}, User: c.Labels[label+userSuffix]}, stdout, stderr)
	stdout.flush()
	stderr.flush()
	if err != nil {
		return fmt.Errorf("container %s: %s: %w", name, label, err)
	}
	if code != 0 {
		return fmt.Errorf("container %s: %s exited with status %d", name, label, code)
	}
	return nil
}

// lineLogger logs what is written to it one line at a time.
type lineLogger struct {
	log     *slog.Logger
	stream  string
	secrets []string
	buf     []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > maxLoggedLineBytes { // a line without end is logged in pieces
		l.emit(l.buf)
		l.buf = l.buf[:0]
	}
	return len(p), nil
}

func (l *lineLogger) flush() {
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = nil
	}
}

func (l *lineLogger) emit(b []byte) {
	l.log.Info("container command output", "stream", l.stream, "line", scrub(strings.TrimRight(string(b), "\r"), l.secrets))
}

// scrub replaces every secret in s.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, scrubbedPlaceholder)
		}
	}
	return s
}
