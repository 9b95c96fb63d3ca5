package update_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/docker"
	"github.com/vwstream/vwstream/internal/notify"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/update"
)

// rig is one test's registry on loopback (crane registry serve), the stand-in
// images v1 (healthy), v2 (healthy, newer) and v3 (its healthcheck always
// fails), and an Engine client.
type rig struct {
	t      *testing.T
	prefix string
	reg    string // host:port of the registry
	client *docker.Client
	log    bytes.Buffer
}

const dockerfile = `FROM scratch
COPY box /box
COPY box /bin/sh
LABEL org.opencontainers.image.version=%V
ENV APP_VERSION=%V
VOLUME /data
HEALTHCHECK --interval=1s --timeout=5s --retries=1 CMD ["/box", "exit", "%H"]
ENTRYPOINT ["/box"]
CMD ["run"]
`

func newRig(t *testing.T) *rig {
	testenv.Docker(t)
	r := &rig{t: t, prefix: testenv.UniqueName(t), reg: testenv.Registry(t)}
	box := testenv.StaticBinary(t, "github.com/vwstream/vwstream/internal/docker/testdata/box", t.TempDir())
	for _, v := range []struct{ ver, health string }{{"1", "0"}, {"2", "0"}, {"3", "1"}} {
		// The test's own label keeps its images apart from every other
		// build's, so removing them by id removes nothing another test uses.
		df := strings.NewReplacer("%V", v.ver, "%H", v.health).Replace(dockerfile) + "LABEL vwstream.test=" + r.prefix + "\n"
		tag := r.prefix + ":v" + v.ver
		testenv.BuildImage(t, tag, df, map[string]string{"box": box})
		id := testenv.DockerRun(t, "image", "inspect", "--format", "{{.Id}}", tag)
		t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", id).Run() })
	}
	c, err := docker.New(t.Context(), "unix://"+testenv.DockerSocket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r.client = c
	return r
}

// push makes repo:latest on the registry (and locally) version v; it returns
// the full reference.
func (r *rig) push(repo, v string) string {
	ref := r.reg + "/" + r.prefix + "-" + repo + ":latest"
	r.t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", ref).Run() })
	testenv.DockerRun(r.t, "tag", r.prefix+":v"+v, ref)
	testenv.DockerRun(r.t, "push", "-q", ref)
	return ref
}

// run starts a container name from ref with extra docker run flags.
func (r *rig) run(name, ref string, flags ...string) string {
	name = r.prefix + "-" + name
	testenv.RemoveContainers(r.t, name, name+update.AsideSuffix)
	// Each test's containers are in its own scope: the passes of tests
	// running at once (and of other packages' updaters) never touch them.
	args := append([]string{"run", "-d", "--name", name, "--label", update.LabelScope + "=" + r.prefix}, flags...)
	testenv.DockerRun(r.t, append(args, ref)...)
	// The image's VOLUME: a replacement container mounts it by name, and
	// `rm -v` of that one leaves it, so it is removed by name once the
	// containers are gone.
	for _, m := range r.inspect(name).Mounts {
		if m.Destination == "/data" && m.Name != "" {
			r.t.Cleanup(func() {
				_ = exec.Command("docker", "rm", "-f", "-v", name, name+update.AsideSuffix).Run()
				_ = exec.Command("docker", "volume", "rm", "-f", m.Name).Run()
			})
		}
	}
	r.waitHealthy(name)
	return name
}

func (r *rig) waitHealthy(name string) {
	for i := 0; ; i++ {
		ins := r.inspect(name)
		if ins.State.Health != nil && ins.State.Health.Status == "healthy" {
			return
		}
		if i > 300 {
			r.t.Fatalf("%s not healthy: %+v", name, ins.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *rig) options() update.Options {
	return update.Options{Docker: r.client, Registry: &update.Registry{}, LabelEnable: true, Scope: r.prefix,
		HealthTimeout: time.Minute, StableFor: 2 * time.Second, PollInterval: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&r.log, nil))}
}

// item runs one pass and returns the item of container name.
func (r *rig) pass(o update.Options, name string) (update.Item, bool) {
	rep, err := o.Run(r.t.Context())
	if err != nil {
		r.t.Fatal(err)
	}
	for _, it := range rep.Items {
		if it.Container == name {
			return it, true
		}
	}
	return update.Item{}, false
}

// inspected is the part of an inspection the tests compare.
type inspected struct {
	ID     string `json:"Id"`
	Image  string `json:"Image"`
	State  docker.ContainerState
	Config struct {
		Env         []string
		Labels      map[string]string
		User        string
		StopTimeout *int
		Cmd         []string
		Entrypoint  []string
	}
	HostConfig struct {
		Binds         []string
		RestartPolicy struct{ Name string }
		PortBindings  map[string][]struct{ HostIP, HostPort string }
		NetworkMode   string
	}
	Mounts []struct {
		Type, Name, Source, Destination string
	}
	NetworkSettings struct {
		Networks map[string]struct{ Aliases []string }
	}
}

func (r *rig) inspect(name string) inspected {
	var out inspected
	raw, err := r.client.InspectRaw(r.t.Context(), name)
	if err != nil {
		r.t.Fatalf("inspect %s: %v", name, err)
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		r.t.Fatal(err)
	}
	return out
}

func (r *rig) imageID(ref string) string {
	id, err := r.client.ImageID(r.t.Context(), ref)
	if err != nil {
		r.t.Fatal(err)
	}
	return id
}

func (r *rig) gone(name string) {
	if _, err := r.client.InspectRaw(r.t.Context(), name); err == nil {
		r.t.Errorf("container %s still exists", name)
	}
}

// aliases are a network's aliases without the container's own short id.
func aliases(ins inspected, network string) []string {
	out := slices.DeleteFunc(slices.Clone(ins.NetworkSettings.Networks[network].Aliases), func(a string) bool { return a == ins.ID[:12] })
	slices.Sort(out)
	return out
}

func TestUpdate_V1ToV2KeepsConfiguration(t *testing.T) {
	r := newRig(t)
	ref := r.push("app", "1")
	net1, net2, vol := r.prefix+"-front", r.prefix+"-back", r.prefix+"-vol"
	for _, n := range []string{net1, net2} {
		testenv.DockerRun(t, "network", "create", n)
		t.Cleanup(func() { _ = exec.Command("docker", "network", "rm", n).Run() })
	}
	testenv.DockerRun(t, "volume", "create", vol)
	testenv.RemoveVolumes(t, vol)
	name := r.run("app", ref, "--label", "vwstream.update=true", "--label", "custom=kept",
		"--network", net1, "--network-alias", "web", "-v", vol+":/named", "-e", "FOO=bar",
		"-p", "127.0.0.1::8080", "--restart", "unless-stopped", "--stop-timeout", "3", "--user", "1000")
	testenv.DockerRun(t, "network", "connect", "--alias", "db-client", net2, name)
	other := r.run("unlabelled", ref)
	old, oldOther := r.inspect(name), r.inspect(other)
	var oldAnon string
	for _, m := range old.Mounts {
		if m.Destination == "/data" {
			oldAnon = m.Name
		}
	}
	r.push("app", "2")

	// Dry run and monitor only: the new digest is reported, nothing changes.
	for _, mode := range []string{"dry-run", "monitor-only"} {
		o := r.options()
		o.DryRun, o.MonitorOnly = mode == "dry-run", mode == "monitor-only"
		it, ok := r.pass(o, name)
		if !ok || it.Action != update.ActionAvailable || it.OldDigest == "" || it.NewDigest == "" || it.OldDigest == it.NewDigest || it.OldVersion != "1" {
			t.Fatalf("%s: %+v", mode, it)
		}
		if now := r.inspect(name); now.ID != old.ID || !now.State.StartedAt.Equal(old.State.StartedAt) {
			t.Fatalf("%s changed the container", mode)
		}
	}

	it, ok := r.pass(r.options(), name)
	if !ok || it.Action != update.ActionUpdated || it.OldVersion != "1" || it.NewVersion != "2" {
		t.Fatalf("update: %+v\n%s", it, r.log.String())
	}
	if it.DowntimeSeconds <= 0 {
		t.Errorf("no downtime reported: %+v", it)
	}
	t.Logf("update downtime (old stopped to new healthy): %.1f s", it.DowntimeSeconds)
	if _, ok := r.pass(r.options(), other); ok {
		t.Errorf("the unlabelled container was checked")
	}
	if now := r.inspect(other); now.ID != oldOther.ID || !now.State.StartedAt.Equal(oldOther.State.StartedAt) {
		t.Errorf("the unlabelled container changed")
	}
	r.gone(name + update.AsideSuffix)
	r.gone(old.ID)

	cur := r.inspect(name)
	if cur.ID == old.ID || cur.Image != r.imageID(r.prefix+":v2") || !cur.State.Running {
		t.Fatalf("not replaced by v2: %+v", cur)
	}
	// Field by field: what the user set is kept; the image's own defaults
	// are the new image's.
	for _, e := range []string{"FOO=bar", "APP_VERSION=2"} {
		if !slices.Contains(cur.Config.Env, e) {
			t.Errorf("env %q missing: %v", e, cur.Config.Env)
		}
	}
	if slices.Contains(cur.Config.Env, "APP_VERSION=1") {
		t.Errorf("the old image's env was carried over: %v", cur.Config.Env)
	}
	for k, v := range map[string]string{"vwstream.update": "true", "custom": "kept", update.LabelVersion: "2"} {
		if cur.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cur.Config.Labels[k], v)
		}
	}
	if cur.Config.User != "1000" || cur.Config.StopTimeout == nil || *cur.Config.StopTimeout != 3 {
		t.Errorf("user %q stop timeout %v", cur.Config.User, cur.Config.StopTimeout)
	}
	if cur.HostConfig.RestartPolicy.Name != "unless-stopped" || cur.HostConfig.NetworkMode != net1 {
		t.Errorf("host config: %+v", cur.HostConfig)
	}
	if !slices.Equal(cur.HostConfig.Binds[:1], old.HostConfig.Binds) {
		t.Errorf("binds %v, want %v first", cur.HostConfig.Binds, old.HostConfig.Binds)
	}
	if a, b := cur.HostConfig.PortBindings["8080/tcp"], old.HostConfig.PortBindings["8080/tcp"]; len(a) != 1 || a[0] != b[0] {
		t.Errorf("ports %v, want %v", a, b)
	}
	mounts := map[string]string{}
	for _, m := range cur.Mounts {
		mounts[m.Destination] = m.Name
	}
	if mounts["/named"] != vol || mounts["/data"] != oldAnon {
		t.Errorf("mounts %v: want /named=%s and /data=%s (the old anonymous volume)", mounts, vol, oldAnon)
	}
	if len(cur.NetworkSettings.Networks) != 2 {
		t.Errorf("networks %v", cur.NetworkSettings.Networks)
	}
	for _, n := range []string{net1, net2} {
		if a, b := aliases(cur, n), aliases(old, n); !slices.Equal(a, b) {
			t.Errorf("network %s aliases %v, want %v", n, a, b)
		}
		if slices.Contains(cur.NetworkSettings.Networks[n].Aliases, old.ID[:12]) {
			t.Errorf("network %s keeps the old id alias", n)
		}
	}

	// A second pass finds it up to date.
	if it, _ := r.pass(r.options(), name); it.Action != update.ActionUpToDate {
		t.Errorf("second pass: %+v", it)
	}
}

func TestUpdate_V1ToV3RollsBack(t *testing.T) {
	r := newRig(t)
	ref := r.push("app", "1")
	name := r.run("app", ref, "--label", "com.centurylinklabs.watchtower.enable=true", "-e", "FOO=bar")
	old := r.inspect(name)
	r.push("app", "3")
	var events recorder
	o := r.options()
	o.Notifier, o.Memory = &events, &update.Memory{}
	var cur inspected
	it, ok := r.pass(o, name)
	if !ok || it.Action != update.ActionRolledBack || !strings.Contains(it.Error, "unhealthy") {
		t.Fatalf("%+v\n%s", it, r.log.String())
	}
	defer func() {
		// The next pass does not stop the service again for the same broken image.
		again, _ := r.pass(o, name)
		if again.Action != update.ActionSkipped || !strings.Contains(again.Error, "rolled back before") {
			t.Errorf("second pass: %+v", again)
		}
		if now := r.inspect(name); !now.State.StartedAt.Equal(cur.State.StartedAt) {
			t.Errorf("the second pass restarted the container")
		}
	}()
	t.Logf("rollback downtime (old stopped to old healthy again): %.1f s", it.DowntimeSeconds)
	r.waitHealthy(name)
	cur = r.inspect(name)
	if cur.ID != old.ID || cur.Image != old.Image || !cur.State.Running {
		t.Fatalf("old container not back: %+v", cur)
	}
	r.gone(name + update.AsideSuffix)
	if out := testenv.DockerRun(t, "ps", "-aq", "--filter", "ancestor="+r.prefix+":v3"); out != "" {
		t.Errorf("the v3 container is left: %s", out)
	}
	// One notification: not ok, with both digests and versions and the steps.
	if len(events.got) != 1 {
		t.Fatalf("%d notifications", len(events.got))
	}
	ev := events.got[0]
	for _, want := range []string{"rolled-back", it.OldDigest, it.NewDigest, "(version 1)", "(version 3)", "renamed the old container back"} {
		if ev.OK || ev.Kind != "update" || !strings.Contains(ev.Detail, want) {
			t.Errorf("notification %+v lacks %q", ev, want)
		}
	}
}

// TestUpdate_PinAndCooldown: a new image outside the container's pinned
// version range, or younger than UPDATE_COOLDOWN, is pulled and looked at but
// does not replace anything.
func TestUpdate_PinAndCooldown(t *testing.T) {
	r := newRig(t)
	ref := r.push("pin", "1")
	pinned := r.run("pinned", ref, "--label", "vwstream.update=true", "--label", "vwstream.update.pin=~1.0.0")
	cool := r.run("cool", ref, "--label", "vwstream.update=true")
	before := map[string]inspected{pinned: r.inspect(pinned), cool: r.inspect(cool)}
	r.push("pin", "2")
	o := r.options()
	o.Cooldown = time.Hour
	for name, want := range map[string]string{pinned: "outside the pinned range ~1.0.0", cool: "UPDATE_COOLDOWN waits for 1h0m0s"} {
		it, ok := r.pass(o, name)
		if !ok || it.Action != update.ActionSkipped || !strings.Contains(it.Error, want) || it.NewVersion != "2" {
			t.Errorf("%s: %+v, want skipped: %q", name, it, want)
		}
		if now := r.inspect(name); now.ID != before[name].ID || !now.State.StartedAt.Equal(before[name].State.StartedAt) {
			t.Errorf("%s was changed", name)
		}
	}
}

// recorder is a notify.Notifier keeping what it is sent.
type recorder struct{ got []notify.Event }

func (r *recorder) Notify(_ context.Context, ev notify.Event) error {
	r.got = append(r.got, ev)
	return nil
}

func TestUpdate_RegistryFailuresTouchNothing(t *testing.T) {
	r := newRig(t)
	down := testenv.FreeAddr(t) + "/" + r.prefix + "-down:latest"
	testenv.DockerRun(t, "tag", r.prefix+":v1", down)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", down).Run() })
	missing := r.reg + "/" + r.prefix + "-never-pushed:latest"
	testenv.DockerRun(t, "tag", r.prefix+":v1", missing)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", missing).Run() })
	for _, c := range []struct{ name, ref, want string }{{"down", down, "connection refused"}, {"missing", missing, "no such image or tag (HTTP 404)"}} {
		name := r.run(c.name, c.ref, "--label", "vwstream.update=true")
		old := r.inspect(name)
		it, _ := r.pass(r.options(), name)
		if it.Action != update.ActionFailed || !strings.Contains(it.Error, c.want) || strings.Contains(it.Error, "\n") {
			t.Errorf("%s: %+v", c.ref, it)
		}
		if now := r.inspect(name); now.ID != old.ID || !now.State.StartedAt.Equal(old.State.StartedAt) {
			t.Errorf("%s: the container changed", c.ref)
		}
	}
}

// TestUpdate_Hooks: a failing pre-update hook skips the update with nothing
// stopped; pre-update and post-update hooks run in the old and the new
// container around a successful one; vwstream's own container is reported,
// not replaced.
func TestUpdate_Hooks(t *testing.T) {
	r := newRig(t)
	ref := r.push("app", "1")
	events := t.TempDir()
	skipped := r.run("skipped", ref, "--label", "vwstream.update=true", "--label", "vwstream.update.pre-update=box exit 3")
	hooked := r.run("hooked", ref, "--label", "vwstream.update=true", "-v", events+":/events",
		"--label", "com.centurylinklabs.watchtower.lifecycle.pre-check=box write /events/pre-check yes",
		"--label", "vwstream.update.pre-update=box write /events/pre-update yes",
		"--label", "vwstream.update.post-update=box write /events/post-update yes")
	self := r.run("self", ref, "--label", "vwstream.update=true", "--hostname", "vwstream-self")
	oldSkipped, oldHooked, oldSelf := r.inspect(skipped), r.inspect(hooked), r.inspect(self)
	r.push("app", "2")
	o := r.options()
	o.SelfHostname = "vwstream-self" // as if this process ran in that container
	var requests atomic.Int32
	o.Registry = &update.Registry{HTTP: &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		requests.Add(1)
		return http.DefaultTransport.RoundTrip(req)
	})}}
	rep, err := o.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d registry requests for three containers of one image, want 1", n)
	}
	got := map[string]update.Item{}
	for _, it := range rep.Items {
		got[it.Container] = it
	}
	if it := got[skipped]; it.Action != update.ActionSkipped || !strings.Contains(it.Error, "pre-update hook exited 3") {
		t.Errorf("skipped: %+v", it)
	}
	if now := r.inspect(skipped); now.ID != oldSkipped.ID || !now.State.StartedAt.Equal(oldSkipped.State.StartedAt) {
		t.Errorf("a failing pre-update hook did not leave the container alone")
	}
	if it := got[self]; it.Action != update.ActionSelf {
		t.Errorf("own container: %+v", it)
	}
	if now := r.inspect(self); now.ID != oldSelf.ID || !now.State.StartedAt.Equal(oldSelf.State.StartedAt) {
		t.Errorf("the own container was touched")
	}
	if it := got[hooked]; it.Action != update.ActionUpdated {
		t.Fatalf("hooked: %+v\n%s", it, r.log.String())
	}
	if now := r.inspect(hooked); now.ID == oldHooked.ID {
		t.Errorf("hooked not replaced")
	}
	for _, f := range []string{"pre-check", "pre-update", "post-update"} {
		if b, err := os.ReadFile(filepath.Join(events, f)); err != nil || string(b) != "yes" {
			t.Errorf("%s hook: %q %v", f, b, err)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// fakeProtector records when the engine calls it, with the old container's
// run state at each call, and fails where told.
type fakeProtector struct {
	r                    *rig
	name                 string
	calls                []string
	snapshotErr, backErr error
}

func (f *fakeProtector) state(call string) {
	f.calls = append(f.calls, call+"/running="+strconv.FormatBool(f.r.inspect(f.name).State.Running))
}

func (f *fakeProtector) Snapshot(context.Context) (string, error) {
	f.state("snapshot")
	return "snap-1", f.snapshotErr
}

func (f *fakeProtector) Mark(context.Context) (update.RestorePoint, error) {
	f.state("mark")
	return update.RestorePoint{TXID: 42}, nil
}

func (f *fakeProtector) PutBack(context.Context, update.RestorePoint) (string, error) {
	f.calls = append(f.calls, "put-back")
	return "put back", f.backErr
}

// TestUpdate_ProtectedOrderAndFailures: for a protected container the
// snapshot is taken while the old version serves and the point marked once
// it stopped; a snapshot that fails skips the update with nothing stopped;
// a put-back that fails leaves the old version stopped (never started on
// data it may not read) and says how to restore.
func TestUpdate_ProtectedOrderAndFailures(t *testing.T) {
	r := newRig(t)
	ref := r.push("prot", "1")
	name := r.run("prot", ref, "--label", "vwstream.update=true", "--label", "vwstream.protected=true")
	before := r.inspect(name)
	r.push("prot", "3")

	f := &fakeProtector{r: r, name: name, snapshotErr: errors.New("destination down")}
	o := r.options()
	o.Protect = f
	it, _ := r.pass(o, name)
	if it.Action != update.ActionSkipped || !strings.Contains(it.Error, "restore point: destination down; not updated") {
		t.Fatalf("snapshot failure: %+v", it)
	}
	if now := r.inspect(name); !now.State.StartedAt.Equal(before.State.StartedAt) {
		t.Fatal("a failed restore point stopped the container")
	}

	f = &fakeProtector{r: r, name: name, backErr: errors.New("bucket down")}
	o.Protect = f
	it, _ = r.pass(o, name)
	want := []string{"snapshot/running=true", "mark/running=false", "put-back"}
	if !slices.Equal(f.calls, want) {
		t.Fatalf("calls %v, want %v", f.calls, want)
	}
	if it.Action != update.ActionFailed || !strings.Contains(it.Error, "bucket down; the old container is left stopped") ||
		!strings.Contains(it.Error, "--txid 42") || it.RestorePoint == nil || it.RestorePoint.Snapshot != "snap-1" {
		t.Fatalf("put-back failure: %+v", it)
	}
	now := r.inspect(name)
	if now.ID != before.ID || now.State.Running {
		t.Fatalf("old container: %+v, want it back under its name, stopped", now.State)
	}
}
