// Package quiesce runs the container operations around a snapshot's capture,
// compatible with docker-volume-backup's labels: the pre commands of labelled
// containers (archive-pre, exec-pre, vwstream.backup-pre) run inside them
// first; then the running containers labelled to stop during a backup are
// stopped, dependencies last; after the capture they are started again,
// dependencies first; once the snapshot is stored (or has failed) the post
// commands run. Whatever happens, every
// container it stopped is started again before it returns, except those whose
// label says no-restart.
//
// It talks to the Engine through internal/docker only; internal/snapshot sees
// it as a snapshot.Quiesce built by the wiring in cmd and internal/node.
package quiesce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/vwstream/vwstream/internal/docker"
	"github.com/vwstream/vwstream/internal/snapshot"
)

// Labels read on containers. The docker-volume-backup names are honoured so a
// stack moves over without relabelling; the vwstream names are equivalent.
const (
	LabelStop             = "docker-volume-backup.stop-during-backup"
	LabelStopNoRestart    = "docker-volume-backup.stop-during-backup-no-restart"
	LabelOwnStop          = "vwstream.stop-during-backup"
	LabelOwnStopNoRestart = "vwstream.stop-during-backup-no-restart"
	LabelExecLabel        = "docker-volume-backup.exec-label"
	LabelOwnExecLabel     = "vwstream.exec-label"
	LabelComposeService   = "com.docker.compose.service"
	LabelComposeDependsOn = "com.docker.compose.depends_on"
)

// Defaults.
const (
	DefaultStopLabelValue = "true"           // BACKUP_STOP_DURING_BACKUP_LABEL's default
	DefaultCommandShell   = "/bin/sh"        // command labels run as DefaultCommandShell -c VALUE
	DefaultResumeTimeout  = time.Minute * 5  // bound on restarting, and on the post commands
	DefaultEngineStopWait = 10 * time.Second // the Engine's stop timeout for a container without its own
)

const (
	userSuffix          = ".user" // LABEL.user names the user of LABEL's command
	scrubbedPlaceholder = "(hidden)"
	maxLoggedLineBytes  = 8 << 10
)

// Command labels, each run with `/bin/sh -c VALUE` inside its container (as
// docker-volume-backup does); a LABEL.user label names the user.
var (
	PreLabels  = []string{"docker-volume-backup.archive-pre", "docker-volume-backup.exec-pre", "vwstream.backup-pre"}
	PostLabels = []string{"docker-volume-backup.archive-post", "docker-volume-backup.exec-post", "vwstream.backup-post"}
)

// Options configure the container operations.
type Options struct {
	Docker *docker.Client
	// StopLabel selects the containers to stop: a value matched under
	// LabelStop / LabelOwnStop (and their no-restart forms), or key=value
	// naming the label itself. "" means DefaultStopLabelValue.
	StopLabel string
	// ExecLabel, when set, limits the command labels to containers whose
	// LabelExecLabel or LabelOwnExecLabel equals it.
	ExecLabel string
	// Secrets are replaced by (hidden) in the logged command output.
	Secrets []string
	Logger  *slog.Logger
	Now     func() time.Time
}

// target is one container to stop.
type target struct {
	id, name  string
	service   string   // Compose service, or the name
	dependsOn []string // Compose services it depends on
	restart   bool
}

// Quiesce is the snapshot.Quiesce of o: pre commands, then stops. On a
// failure it returns the Pause too when something is stopped, so the
// snapshot run resumes it.
func (o Options) Quiesce(ctx context.Context) (*snapshot.Pause, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	running, err := o.Docker.List(ctx, docker.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	if err := o.runCommands(ctx, running, PreLabels, true); err != nil {
		return nil, err
	}
	targets := o.selectTargets(running)
	p := &pause{o: o}
	sp := &snapshot.Pause{Resume: p.resume, Finish: o.finish}
	for _, t := range stopOrder(targets) {
		o.Logger.Info("stopping container for the snapshot", "container", t.name)
		at := o.Now()
		if err := o.Docker.Stop(ctx, t.id, 0); err != nil {
			return sp, fmt.Errorf("stop container %s: %w", t.name, err)
		}
		p.stopped = append(p.stopped, stopped{target: t, at: at})
		sp.Stopped = len(p.stopped)
		if info, err := o.Docker.Inspect(ctx, t.id); err == nil && info.State.ExitCode == 137 {
			grace := DefaultEngineStopWait
			if info.Config.StopTimeout != nil {
				grace = time.Duration(*info.Config.StopTimeout) * time.Second
			}
			o.Logger.Warn(fmt.Sprintf("container %s did not stop within its %s stop timeout and was killed", t.name, grace), "container", t.name)
		}
	}
	return sp, nil
}

// selectTargets picks the running containers the stop label names.
func (o Options) selectTargets(running []docker.Container) []target {
	val := o.StopLabel
	if val == "" {
		val = DefaultStopLabelValue
	}
	key, kv, hasKey := strings.Cut(val, "=")
	var out []target
	for _, c := range running {
		if c.State != "running" {
			continue
		}
		restart, stop := true, false
		if hasKey {
			stop = c.Labels[key] == kv
		} else {
			stop = c.Labels[LabelStop] == val || c.Labels[LabelOwnStop] == val
			if !stop && (c.Labels[LabelStopNoRestart] == val || c.Labels[LabelOwnStopNoRestart] == val) {
				stop, restart = true, false
			}
		}
		if !stop {
			continue
		}
		t := target{id: c.ID, name: c.Name(), service: c.Labels[LabelComposeService], restart: restart}
		if t.service == "" {
			t.service = t.name
		}
		for _, dep := range strings.Split(c.Labels[LabelComposeDependsOn], ",") {
			// Compose writes service:condition:restart for each dependency.
			if svc, _, _ := strings.Cut(strings.TrimSpace(dep), ":"); svc != "" {
				t.dependsOn = append(t.dependsOn, svc)
			}
		}
		out = append(out, t)
	}
	return out
}

// startOrder sorts targets so every container comes after the ones it
// depends on (among those stopped); ties and cycles go by name.
func startOrder(ts []target) []target {
	sort.Slice(ts, func(i, j int) bool { return ts[i].name < ts[j].name })
	byService := map[string][]int{}
	for i, t := range ts {
		byService[t.service] = append(byService[t.service], i)
	}
	done := make([]bool, len(ts))
	visiting := make([]bool, len(ts))
	var out []target
	var visit func(i int)
	visit = func(i int) {
		if done[i] || visiting[i] {
			return // a cycle is broken where it is met
		}
		visiting[i] = true
		for _, dep := range ts[i].dependsOn {
			for _, j := range byService[dep] {
				visit(j)
			}
		}
		visiting[i], done[i] = false, true
		out = append(out, ts[i])
	}
	for i := range ts {
		visit(i)
	}
	return out
}

// stopOrder is startOrder reversed: dependents stop before what they use.
func stopOrder(ts []target) []target {
	out := startOrder(ts)
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

type stopped struct {
	target
	at time.Time
}

// pause is what Quiesce stopped, resumed once.
type pause struct {
	o       Options
	stopped []stopped
}

// resume starts the stopped containers in dependency order. A container
// that fails to start does not keep the others down.
func (p *pause) resume(ctx context.Context) ([]snapshot.Container, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultResumeTimeout)
	defer cancel()
	var ts []target
	at := map[string]time.Time{}
	for _, s := range p.stopped {
		ts = append(ts, s.target)
		at[s.id] = s.at
	}
	var out []snapshot.Container
	var errs []error
	for _, t := range startOrder(ts) {
		c := snapshot.Container{Name: t.name, StoppedAt: at[t.id]}
		if !t.restart {
			c.Seconds = p.o.Now().Sub(c.StoppedAt).Seconds()
			p.o.Logger.Info("container left stopped (no-restart label)", "container", t.name)
			out = append(out, c)
			continue
		}
		err := p.o.Docker.Start(ctx, t.id)
		c.StartedAt = p.o.Now()
		c.Seconds = c.StartedAt.Sub(c.StoppedAt).Seconds()
		if err != nil {
			c.Error = err.Error()
			errs = append(errs, fmt.Errorf("start container %s: %w", t.name, err))
			p.o.Logger.Error("container not restarted", "container", t.name, "error", err)
		} else {
			c.Restarted = true
			p.o.Logger.Info("container restarted", "container", t.name, "stopped_seconds", fmt.Sprintf("%.2f", c.Seconds))
		}
		out = append(out, c)
	}
	return out, errors.Join(errs...)
}

// finish runs the post commands of every running container in scope.
func (o Options) finish(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultResumeTimeout)
	defer cancel()
	running, err := o.Docker.List(ctx, docker.ListOptions{})
	if err != nil {
		return fmt.Errorf("post commands: list containers: %w", err)
	}
	return o.runCommands(ctx, running, PostLabels, false)
}
