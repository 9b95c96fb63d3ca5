// Package update keeps labelled containers on their image tag's newest
// version, as Watchtower did, and undoes an update that does not come up
// healthy. One pass (Options.Run) lists the containers to watch, asks each
// image's registry for the tag's manifest digest with one HEAD request (no
// pull), compares it with the digests of the image the container runs, and
// replaces the containers whose tag moved: pull, stop (the container's own
// stop signal and timeout), rename the old container aside (kept), create the
// new one from the old one's complete configuration, start it and wait for it
// to be healthy. A healthy replacement removes the old container; any other
// outcome, an Engine error included, removes the new one and puts the old one
// back under its name, running.
//
// Containers are selected by LabelEnable (vwstream.update=true) or
// Watchtower's LabelWatchtowerEnable, so a Compose file written for
// Watchtower works unchanged. vwstream's own container is never replaced in
// place: it is reported instead. The package talks to the Engine through
// internal/docker only and to registries itself (Registry).
package update

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/vwstream/vwstream/internal/docker"
	"github.com/vwstream/vwstream/internal/notify"
)

// Labels read on containers and images.
const (
	LabelEnable           = "vwstream.update"
	LabelWatchtowerEnable = "com.centurylinklabs.watchtower.enable"
	// LabelScope (or Watchtower's LabelWatchtowerScope) puts a container in
	// the scope of the updater whose Options.Scope has the same value.
	LabelScope           = "vwstream.update.scope"
	LabelWatchtowerScope = "com.centurylinklabs.watchtower.scope"
	LabelVersion         = "org.opencontainers.image.version"
)

// Defaults.
const (
	DefaultHealthTimeout = 5 * time.Minute  // UPDATE_HEALTH_TIMEOUT
	DefaultStableFor     = 30 * time.Second // UPDATE_STABLE_FOR
	DefaultLabelEnable   = true             // WATCHTOWER_LABEL_ENABLE
	DefaultPullTimeout   = 30 * time.Minute
	// DefaultRestoreTimeout bounds putting the old container back, which runs
	// even when the pass's context is cancelled.
	DefaultRestoreTimeout = 5 * time.Minute
	// AsideSuffix is appended to the old container's name while its
	// replacement is tried.
	AsideSuffix = "-vwstream-previous"
)

// Actions an Item reports.
const (
	ActionUpToDate   = "up-to-date"
	ActionAvailable  = "available"   // a newer image exists; dry run or monitor only
	ActionUpdated    = "updated"     // replaced, the new container is healthy
	ActionRolledBack = "rolled-back" // the new container was not healthy; the old one runs again
	ActionSelf       = "self"        // vwstream's own container: reported, not replaced
	ActionSkipped    = "skipped"     // pinned by digest, no registry digest to compare, or a pre-update hook failed
	ActionFailed     = "failed"      // the check or the update failed; see Error
)

// Options configure one pass.
type Options struct {
	Docker   *docker.Client
	Registry *Registry
	// LabelEnable (WATCHTOWER_LABEL_ENABLE) true watches only containers
	// labelled LabelEnable=true or LabelWatchtowerEnable=true; false watches
	// every container except those labelled =false.
	LabelEnable bool
	// Scope (UPDATE_SCOPE, WATCHTOWER_SCOPE), when set, watches only the
	// containers labelled LabelScope (or Watchtower's scope label) with this
	// value: several updaters on one Engine, each with its own stack.
	Scope       string
	DryRun      bool // report what would change, change nothing
	MonitorOnly bool // UPDATE_MONITOR_ONLY: notify about new images, change nothing
	// HealthTimeout bounds the wait for a HEALTHCHECK to report healthy;
	// StableFor is how long a container without one must keep running.
	HealthTimeout time.Duration
	StableFor     time.Duration
	Cleanup       bool // UPDATE_CLEANUP: remove the old image after an update
	// Cooldown (UPDATE_COOLDOWN) is how old an image must be, by its build
	// time, before it replaces a running one; 0 uses any.
	Cooldown time.Duration
	// SelfHostname is this process's host name: a container with it is
	// vwstream's own and is never replaced.
	SelfHostname string
	Notifier     notify.Notifier // nil: none
	Logger       *slog.Logger
	// PollInterval is how often a wait looks at the container; 0 means 1 s.
	PollInterval time.Duration
	// HookTimeout bounds one lifecycle hook; 0 means DefaultHookTimeout.
	HookTimeout time.Duration
	// Secrets are replaced by (hidden) in a failing hook's output.
	Secrets []string
	// Protect takes the restore point of containers labelled
	// LabelProtected=true and puts their data back after a rollback; nil
	// leaves those containers alone (see Protector).
	Protect Protector
	// DataMounts are the host paths and volume names holding the protected
	// data folder (see DataMounts): a container mounting one is protected.
	DataMounts []string
	// Memory carries what one pass learns to the next (the digests rolled
	// back); nil forgets.
	Memory *Memory
}

// Item is what a pass found and did for one container.
type Item struct {
	Container  string `json:"container"`
	Image      string `json:"image"`
	Action     string `json:"action"`
	OldDigest  string `json:"old_digest,omitempty"`
	NewDigest  string `json:"new_digest,omitempty"`
	OldVersion string `json:"old_version,omitempty"` // LabelVersion of the running image
	NewVersion string `json:"new_version,omitempty"` // LabelVersion of the new image, once it is local
	// DowntimeSeconds is from the old container stopping to the new one
	// healthy, or, after a rollback, to the old one running again.
	DowntimeSeconds float64 `json:"downtime_seconds,omitempty"`
	// RestorePoint is set for a protected container once its old version
	// stopped.
	RestorePoint *RestorePoint `json:"restore_point,omitempty"`
	Steps        []string      `json:"steps,omitempty"`
	Error        string        `json:"error,omitempty"`
	// HeldBack is set on a skipped item whose registry image was rolled back
	// by an earlier pass: the container still runs the old version.
	HeldBack bool `json:"held_back,omitempty"`
}

// Report is one pass.
type Report struct {
	Items []Item `json:"containers"`
}

// Failed counts items that ended ActionFailed or ActionRolledBack.
func (r Report) Failed() int {
	n := 0
	for _, it := range r.Items {
		if it.Action == ActionFailed || it.Action == ActionRolledBack {
			n++
		}
	}
	return n
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = DefaultHealthTimeout
	}
	if o.StableFor <= 0 {
		o.StableFor = DefaultStableFor
	}
	if o.HookTimeout <= 0 {
		o.HookTimeout = DefaultHookTimeout
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Registry == nil {
		o.Registry = &Registry{}
	}
}

// Run makes one pass over the watched containers. Its error is for a pass
// that could not start (the Engine does not answer); what happened to each
// container, failures included, is in the report.
func (o Options) Run(ctx context.Context) (Report, error) {
	o.defaults()
	list, err := o.Docker.List(ctx, docker.ListOptions{})
	if err != nil {
		return Report{}, fmt.Errorf("list containers: %w", err)
	}
	var rep Report
	digests := map[Reference]digestAnswer{} // one registry request per image per pass
	for _, c := range list {
		if !o.watched(c.Name(), c.Labels) {
			continue
		}
		it := o.one(ctx, c, digests)
		rep.Items = append(rep.Items, it)
		o.notify(ctx, it)
	}
	return rep, nil
}

// watched applies the scope and label rules. A container renamed aside is
// in the middle of an update (this updater's, or another's on the same
// Engine) and is never taken up.
func (o Options) watched(name string, labels map[string]string) bool {
	if strings.HasSuffix(name, AsideSuffix) {
		return false
	}
	if o.Scope != "" {
		scope, ok := labels[LabelScope]
		if !ok {
			scope = labels[LabelWatchtowerScope]
		}
		if scope != o.Scope {
			return false
		}
	}
	v, ok := labels[LabelEnable]
	if !ok {
		v, ok = labels[LabelWatchtowerEnable]
	}
	if o.LabelEnable {
		return ok && strings.EqualFold(v, "true")
	}
	return !ok || !strings.EqualFold(v, "false")
}

// digestAnswer is a registry's answer for one reference, kept for the pass.
type digestAnswer struct {
	digest string
	err    error
}

// current is what the Engine says about a running container and its image.
type current struct {
	id, name  string
	ref       Reference
	imageID   string
	image     *docker.ImageInfo
	raw       json.RawMessage
	labels    map[string]string
	hostname  string
	entrypath string // first element of entrypoint+cmd
	mounts    []docker.Mount
}

// one checks one container and, when its tag moved, replaces it.
func (o Options) one(ctx context.Context, c docker.Container, digests map[Reference]digestAnswer) Item {
	it := Item{Container: c.Name()}
	fail := func(err error) Item {
		it.Action, it.Error = ActionFailed, err.Error()
		o.Logger.Warn("update: "+it.Container+": "+it.Error, "container", it.Container)
		return it
	}
	cur, err := o.inspect(ctx, c.ID)
	if err != nil {
		return fail(err)
	}
	it.Container = cur.name
	it.Image = cur.ref.String()
	it.OldVersion = versionLabel(cur.image.Config)
	if cur.ref.Digest != "" {
		it.Action, it.Error = ActionSkipped, "pinned by digest"
		return it
	}
	it.OldDigest = repoDigest(cur.image.RepoDigests, cur.ref)
	if !o.DryRun {
		if ran, err := o.runHook(ctx, cur.id, cur.labels, HookPreCheck); err != nil {
			it.Steps = append(it.Steps, err.Error())
			o.Logger.Warn("update: "+cur.name+": "+err.Error(), "container", cur.name)
		} else if ran {
			it.Steps = append(it.Steps, "ran the pre-check hook")
		}
	}
	ans, seen := digests[cur.ref]
	if !seen {
		ans.digest, ans.err = o.Registry.Digest(ctx, cur.ref)
		digests[cur.ref] = ans
	}
	remote, err := ans.digest, ans.err
	if err != nil {
		return fail(err)
	}
	it.NewDigest = remote
	if it.OldDigest == remote {
		it.Action = ActionUpToDate
		return it
	}
	if img, err := o.Docker.ImageInspect(ctx, cur.ref.Repository()+"@"+remote); err == nil {
		it.NewVersion = versionLabel(img.Config)
	}
	switch {
	case o.isSelf(cur):
		it.Action = ActionSelf
		it.Error = "vwstream's own container is not replaced in place; update it with your orchestrator"
		return it
	case o.Memory.rolledBack(cur.name, remote):
		it.Action, it.Error = ActionSkipped, "this image was rolled back before; waiting for the tag to move on"
		it.HeldBack = true
		return it
	case o.DryRun || o.MonitorOnly:
		it.Action = ActionAvailable
		return it
	case o.protected(cur) && o.Protect == nil:
		it.Action, it.Error = ActionSkipped, "it holds vwstream's data folder (or is labelled "+LabelProtected+"=true): "+
			"a restore point needs the node that replicates the data; let `vwstream run` update it (UPDATE_ENABLED=true)"
		return it
	case it.OldDigest == "":
		// A locally built image has no registry digest: nothing to compare.
		it.Action, it.Error = ActionSkipped, "the running image has no digest from "+cur.ref.Domain
		return it
	}
	return o.replace(ctx, cur, it)
}

func (o Options) inspect(ctx context.Context, id string) (*current, error) {
	raw, err := o.Docker.InspectRaw(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	var ins struct {
		ID     string         `json:"Id"`
		Name   string         `json:"Name"`
		Image  string         `json:"Image"`
		Mounts []docker.Mount `json:"Mounts"`
		Config struct {
			Labels     map[string]string `json:"Labels"`
			Image      string            `json:"Image"`
			Hostname   string            `json:"Hostname"`
			Entrypoint []string          `json:"Entrypoint"`
			Cmd        []string          `json:"Cmd"`
		} `json:"Config"`
	}
	if err := json.Unmarshal(raw, &ins); err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	ref, err := ParseReference(ins.Config.Image)
	if err != nil {
		return nil, err
	}
	img, err := o.Docker.ImageInspect(ctx, ins.Image)
	if err != nil {
		return nil, fmt.Errorf("inspect image %s: %w", ins.Config.Image, err)
	}
	cur := &current{id: ins.ID, name: strings.TrimPrefix(ins.Name, "/"), ref: ref, imageID: ins.Image,
		image: img, raw: raw, labels: ins.Config.Labels, hostname: ins.Config.Hostname, mounts: ins.Mounts}
	if argv := append(ins.Config.Entrypoint, ins.Config.Cmd...); len(argv) > 0 {
		cur.entrypath = argv[0]
	}
	return cur, nil
}

// isSelf recognises vwstream's own container: its host name is this
// process's, its program is vwstream, or its image is named vwstream.
func (o Options) isSelf(cur *current) bool {
	if o.SelfHostname != "" && (cur.hostname == o.SelfHostname || strings.HasPrefix(cur.id, o.SelfHostname)) {
		return true
	}
	return path.Base(cur.entrypath) == "vwstream" || path.Base(cur.ref.Path) == "vwstream"
}

// repoDigest is the digest in digests (repo@sha256:...) for ref's repository.
func repoDigest(digests []string, ref Reference) string {
	for _, d := range digests {
		repo, dg, ok := strings.Cut(d, "@")
		if ok && repo == ref.Repository() {
			return dg
		}
	}
	return ""
}

func versionLabel(cfg json.RawMessage) string {
	var c struct {
		Labels map[string]string `json:"Labels"`
	}
	_ = json.Unmarshal(cfg, &c)
	return c.Labels[LabelVersion]
}

// notify sends one event per container that needs a reader: an update, a
// rollback, a failure, a new image under monitor only, vwstream's own image.
func (o Options) notify(ctx context.Context, it Item) {
	if o.Notifier == nil || o.DryRun || it.Action == ActionUpToDate || it.Action == ActionSkipped {
		return
	}
	ev := notify.Event{Kind: "update", Name: it.Container, OK: it.Action == ActionUpdated || it.Action == ActionAvailable || it.Action == ActionSelf,
		Error: it.Error, Time: time.Now()}
	ev.Detail = Describe(it)
	if err := o.Notifier.Notify(ctx, ev); err != nil {
		o.Logger.Warn("update: notification failed: "+err.Error(), "container", it.Container)
	}
}

// Describe is an item in a few lines, for notifications and the command line.
func Describe(it Item) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s", it.Container, it.Image, it.Action)
	if it.DowntimeSeconds > 0 {
		fmt.Fprintf(&b, ", %.1f s without service", it.DowntimeSeconds)
	}
	if it.OldDigest != "" || it.NewDigest != "" {
		fmt.Fprintf(&b, "\n  old %s%s\n  new %s%s", orDash(it.OldDigest), ver(it.OldVersion), orDash(it.NewDigest), ver(it.NewVersion))
	}
	for _, s := range it.Steps {
		b.WriteString("\n  - " + s)
	}
	if it.Error != "" {
		b.WriteString("\n  " + it.Error)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ver(v string) string {
	if v == "" {
		return ""
	}
	return " (version " + v + ")"
}

// errUnhealthy marks a replacement that did not become healthy.
var errUnhealthy = errors.New("not healthy")
