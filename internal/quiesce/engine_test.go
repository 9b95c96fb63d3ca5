package quiesce_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/docker"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/quiesce"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// rig is one test's Docker resources: an image FROM scratch holding the box
// program (also as /bin/sh) and vwload, and the containers made from it.
type rig struct {
	t      *testing.T
	prefix string
	image  string
	events string // host folder mounted at /events in every container
	stop   string // this test's value of the stop label
	client *docker.Client
	log    bytes.Buffer
	logMu  sync.Mutex
}

func newRig(t *testing.T) *rig {
	testenv.Docker(t)
	r := &rig{t: t, prefix: testenv.UniqueName(t), events: t.TempDir()}
	// The label values are the test's own: another test's containers on the
	// same Engine (a compose run, a parallel package) are never touched.
	r.stop = r.prefix
	r.image = r.prefix + ":box"
	bin := t.TempDir()
	box := testenv.StaticBinary(t, "github.com/vwstream/vwstream/internal/docker/testdata/box", bin)
	vwload := testenv.StaticBinary(t, "github.com/vwstream/vwstream/cmd/vwload", bin)
	testenv.BuildImage(t, r.image, "FROM scratch\nCOPY box /box\nCOPY box /bin/sh\nCOPY vwload /vwload\nENTRYPOINT [\"/box\"]\nCMD [\"run\"]\n",
		map[string]string{"box": box, "vwload": vwload})
	c, err := docker.New(t.Context(), "unix://"+testenv.DockerSocket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r.client = c
	return r
}

// run starts a container named prefix-role with labels (and extra docker run
// flags), running `box run` logging to /events/log unless cmd is given.
func (r *rig) run(role string, labels map[string]string, flags []string, cmd ...string) string {
	name := r.prefix + "-" + role
	testenv.RemoveContainers(r.t, name)
	args := []string{"run", "-d", "--name", name, "--hostname", role, "-v", r.events + ":/events"}
	for k, v := range labels {
		args = append(args, "--label", k+"="+v)
	}
	args = append(args, flags...)
	args = append(args, r.image)
	if len(cmd) == 0 {
		cmd = []string{"run", "--log", "/events/log"}
	}
	testenv.DockerRun(r.t, append(args, cmd...)...)
	return name
}

func (r *rig) options(stop, exec string, secrets ...string) quiesce.Options {
	return quiesce.Options{Docker: r.client, StopLabel: stop, ExecLabel: exec, Secrets: secrets,
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{mu: &r.logMu, w: &r.log}, nil))}
}

func (r *rig) logText() string {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	return r.log.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// state is a container's run state and start time as the Engine reports them.
func (r *rig) state(name string) (running bool, started time.Time) {
	var s struct {
		Running   bool
		StartedAt time.Time
	}
	out := testenv.DockerRun(r.t, "inspect", "--format", "{{json .State}}", name)
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		r.t.Fatal(err)
	}
	return s.Running, s.StartedAt
}

// events are the box programs' "start|stop role" lines, in order.
func (r *rig) events_() []string {
	b, _ := os.ReadFile(filepath.Join(r.events, "log"))
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 {
			out = append(out, f[0]+" "+f[1])
		}
	}
	return out
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// TestQuiesce_StopStartOrder: labelled running containers stop dependents
// first and start dependencies first; the no-restart one stays stopped; a
// container that ignores SIGTERM is killed after its own stop timeout and
// says so in one line; an unlabelled one is never touched.
func TestQuiesce_StopStartOrder(t *testing.T) {
	r := newRig(t)
	db := r.run("db", map[string]string{quiesce.LabelOwnStop: r.stop, quiesce.LabelComposeService: "db"}, nil)
	app := r.run("app", map[string]string{quiesce.LabelStop: r.stop, quiesce.LabelComposeService: "app",
		quiesce.LabelComposeDependsOn: "db:service_started:false"}, nil)
	web := r.run("web", map[string]string{quiesce.LabelStop: r.stop, quiesce.LabelComposeService: "web",
		quiesce.LabelComposeDependsOn: "app:service_healthy:true,db:service_started:false"}, nil)
	once := r.run("once", map[string]string{quiesce.LabelStopNoRestart: r.stop}, nil)
	stubborn := r.run("stubborn", map[string]string{quiesce.LabelStop: r.stop}, []string{"--stop-timeout", "1"}, "run", "--ignore-term", "--log", "/events/log")
	other := r.run("other", map[string]string{quiesce.LabelStop: "false"}, nil)
	_, otherStarted := r.state(other)

	ctx := t.Context()
	p, err := r.options(r.stop, r.prefix).Quiesce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.Stopped != 5 {
		t.Fatalf("stopped %d containers, want 5", p.Stopped)
	}
	for _, n := range []string{db, app, web, once, stubborn} {
		if running, _ := r.state(n); running {
			t.Errorf("%s still running after Quiesce", n)
		}
	}
	cs, err := p.Resume(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{db, app, web, stubborn} {
		if running, _ := r.state(n); !running {
			t.Errorf("%s not running after Resume", n)
		}
	}
	if running, _ := r.state(once); running {
		t.Error("the no-restart container was started again")
	}
	if running, started := r.state(other); !running || !started.Equal(otherStarted) {
		t.Errorf("unlabelled container touched: running %v, started %v (was %v)", running, started, otherStarted)
	}
	ev := r.events_()
	if !(indexOf(ev, "stop web") < indexOf(ev, "stop app") && indexOf(ev, "stop app") < indexOf(ev, "stop db")) {
		t.Errorf("stop order: %v", ev)
	}
	starts := ev[indexOf(ev, "stop db"):]
	if !(indexOf(starts, "start db") < indexOf(starts, "start app") && indexOf(starts, "start app") < indexOf(starts, "start web")) {
		t.Errorf("start order: %v", ev)
	}
	if len(cs) != 5 {
		t.Fatalf("report: %+v", cs)
	}
	for _, c := range cs {
		if c.Name == once && (c.Restarted || c.Error != "") || c.Name != once && !c.Restarted {
			t.Errorf("report of %s: %+v", c.Name, c)
		}
	}
	if !strings.Contains(r.logText(), "container "+stubborn+" did not stop within its 1s stop timeout and was killed") {
		t.Errorf("no line about the killed container in:\n%s", r.logText())
	}
}

// TestQuiesce_Commands: pre and post commands run inside their containers
// (as the .user label says, scoped by EXEC_LABEL), their output is logged
// line by line with secrets scrubbed; a failing pre command stops nothing.
func TestQuiesce_Commands(t *testing.T) {
	r := newRig(t)
	const secret = "s3cr3t-token"
	dump := t.TempDir()
	vw := r.run("vw", map[string]string{
		quiesce.LabelStop:                     r.stop,
		"docker-volume-backup.archive-pre":    "box write /dump/dump.sql dump of " + secret,
		"vwstream.backup-post":                "box echo post token=" + secret,
		"vwstream.backup-post.user":           "4321",
		"docker-volume-backup.exec-post":      "box id",
		"docker-volume-backup.exec-post.user": "4321",
		quiesce.LabelExecLabel:                "vw",
	}, []string{"-v", dump + ":/dump"})
	r.run("elsewhere", map[string]string{"vwstream.backup-pre": "box write /dump/other x", quiesce.LabelExecLabel: "other"},
		[]string{"-v", dump + ":/dump"})

	o := r.options(r.stop, "vw", secret)
	p, err := o.Quiesce(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dump, "dump.sql")); err != nil || string(b) != "dump of "+secret {
		t.Fatalf("pre command's dump: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dump, "other")); err == nil {
		t.Fatal("a command outside EXEC_LABEL ran")
	}
	if _, err := p.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.logText(), "post token") {
		t.Fatal("post commands ran at the restart, before the snapshot was stored")
	}
	if err := p.Finish(t.Context()); err != nil {
		t.Fatal(err)
	}
	log := r.logText()
	if strings.Contains(log, secret) || !strings.Contains(log, "post token=(hidden)") || !strings.Contains(log, "line=4321") {
		t.Fatalf("command output in the log (scrubbed, as user 4321):\n%s", log)
	}

	// A failing pre command: one line, nothing stopped.
	failing := r.run("failing", map[string]string{quiesce.LabelStop: r.stop + "-yes", "vwstream.backup-pre": "box exit 3", quiesce.LabelExecLabel: r.prefix}, nil)
	p, err = r.options(r.stop+"-yes", r.prefix).Quiesce(t.Context())
	if err == nil || p != nil || !strings.Contains(err.Error(), "container "+failing+": vwstream.backup-pre exited with status 3") {
		t.Fatalf("failing pre command: %v, pause %+v", err, p)
	}
	if running, _ := r.state(failing); !running {
		t.Fatal("a failed pre command left its container stopped")
	}
	if running, _ := r.state(vw); !running {
		t.Fatal("vw stopped")
	}
}

// recordingStore notes when the first upload starts and can fail it.
type recordingStore struct {
	objstore.Store
	mu       sync.Mutex
	firstPut time.Time
	fail     error
}

func (s *recordingStore) Put(ctx context.Context, key string, rd io.Reader, o objstore.PutOptions) (objstore.ObjectInfo, error) {
	s.mu.Lock()
	if s.firstPut.IsZero() {
		s.firstPut = time.Now()
	}
	s.mu.Unlock()
	if s.fail != nil {
		return objstore.ObjectInfo{}, s.fail
	}
	return s.Store.Put(ctx, key, rd, o)
}

// TestSnapshot_WithStandIn: a Vaultwarden stand-in (vwload serve writing to
// the data folder, with a health check) is labelled to stop. A snapshot
// stops it, runs again before the upload's first byte (the Engine's start
// time against the store's), and the stored snapshot restores byte for
// byte. A snapshot whose upload fails (the store down) and one whose pre
// command fails still leave it running.
func TestSnapshot_WithStandIn(t *testing.T) {
	r := newRig(t)
	data := filepath.Join(t.TempDir(), "data")
	v, err := vaultsim.Create(data, vaultsim.Options{Seed: 3, Attachments: 8, AttachmentMaxSize: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	// Its archive-pre command dumps into another volume, which the snapshot
	// takes as an extra source (BACKUP_SOURCES).
	dumps := t.TempDir()
	vw := r.run("vaultwarden", map[string]string{quiesce.LabelStop: r.stop, quiesce.LabelExecLabel: r.prefix, "docker-volume-backup.archive-pre": "box write /dump/dump.sql dump taken before the stop"},
		[]string{"-v", data + ":/data", "-v", dumps + ":/dump", "--entrypoint", "/vwload", "--health-cmd", "box get http://127.0.0.1:8080/alive", "--health-interval", "1s"},
		"serve", "--dir", "/data", "--addr", "127.0.0.1:8080", "--write-rate", "20")
	waitHealthy(t, vw)

	local, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := &recordingStore{Store: local}
	src := snapshot.SourceFromFolder(data)
	src.Folders[snapshot.SourcesEntry+"dumps"] = dumps
	o := snapshot.Options{Source: src, Quiesce: r.options(r.stop, r.prefix).Quiesce}
	res, err := snapshot.Run(t.Context(), o, []snapshot.Destination{{Name: "target", Store: store, Verify: true}})
	if err != nil {
		t.Fatal(err)
	}
	running, started := r.state(vw)
	if !running || !started.Before(store.firstPut) {
		t.Fatalf("stand-in running %v, started %v; upload started %v", running, started, store.firstPut)
	}
	if len(res.Containers) != 1 || !res.Containers[0].Restarted || res.SpoolBytes == 0 {
		t.Fatalf("result: containers %+v, spool %d", res.Containers, res.SpoolBytes)
	}
	if left, _ := filepath.Glob(filepath.Join(data, ".vwstream-*")); len(left) != 0 {
		t.Fatalf("left in the data folder: %v", left)
	}
	to := filepath.Join(t.TempDir(), "restored")
	if _, err := snapshot.Restore(t.Context(), snapshot.RestoreOptions{Store: local, Name: "latest", To: to}); err != nil {
		t.Fatal(err)
	}
	rv, err := vaultsim.Open(to)
	if err != nil {
		t.Fatalf("restored folder does not open: %v", err)
	}
	rv.Close()
	if b, err := os.ReadFile(filepath.Join(to, "sources", "dumps", "dump.sql")); err != nil || string(b) != "dump taken before the stop" {
		t.Fatalf("the pre command's dump, restored: %q %v", b, err)
	}

	// Failing runs leave the stand-in running.
	store.fail = io.ErrUnexpectedEOF
	if _, err := snapshot.Run(t.Context(), o, []snapshot.Destination{{Name: "target", Store: store}}); err == nil {
		t.Fatal("a run with the store down succeeded")
	}
	if running, _ := r.state(vw); !running {
		t.Fatal("stand-in left stopped after a failed upload")
	}
	store.fail = nil
	testenv.DockerRun(t, "stop", vw)
	testenv.DockerRun(t, "rm", vw)
	vw = r.run("vaultwarden", map[string]string{quiesce.LabelStop: r.stop, quiesce.LabelExecLabel: r.prefix, "vwstream.backup-pre": "box exit 1"},
		[]string{"-v", data + ":/data", "--entrypoint", "/vwload"}, "serve", "--dir", "/data", "--addr", "127.0.0.1:8080", "--write-rate", "0")
	res, err = snapshot.Run(t.Context(), o, []snapshot.Destination{{Name: "target", Store: local}})
	if err == nil || !strings.Contains(err.Error(), "exited with status 1") || len(res.Containers) != 0 {
		t.Fatalf("run with a failing pre command: %v %+v", err, res.Containers)
	}
	if running, _ := r.state(vw); !running {
		t.Fatal("stand-in left stopped after a failed pre command")
	}
}

func waitHealthy(t *testing.T, name string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if testenv.DockerRun(t, "inspect", "--format", "{{.State.Health.Status}}", name) == "healthy" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s never became healthy:\n%s", name, testenv.DockerRun(t, "logs", name))
}
