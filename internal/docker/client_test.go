package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/testenv"
)

// TestNew_MachineEngine negotiates with the Engine the tests run beside
// (20.10, API 1.41 on the test machines): the version spoken is the newer of
// what both sides speak, and a listing works at it.
func TestNew_MachineEngine(t *testing.T) {
	testenv.Docker(t)
	ctx := context.Background()
	c, err := New(ctx, "unix://"+testenv.DockerSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := MaxAPIVersion
	if compareVersions(c.Engine().APIVersion, want) < 0 {
		want = c.Engine().APIVersion
	}
	if c.APIVersion() != want {
		t.Fatalf("negotiated %s with Engine %s (API %s); want %s", c.APIVersion(), c.Engine().Version, c.Engine().APIVersion, want)
	}
	if _, err := c.List(ctx, ListOptions{All: true, Labels: []string{"vwstream.test.none=x"}}); err != nil {
		t.Fatal(err)
	}
	t.Logf("Engine %s, API %s spoken", c.Engine().Version, c.APIVersion())
}

// fakeEngine replays a recorded /version answer and, like the Engine it was
// recorded from, refuses versioned requests below its MinAPIVersion.
func fakeEngine(t *testing.T, versionFile string) (*httptest.Server, *[]string) {
	t.Helper()
	body, err := os.ReadFile(versionFile)
	if err != nil {
		t.Fatal(err)
	}
	var v Version
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		if r.URL.Path == "/version" {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
			return
		}
		ver, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v"), "/")
		if compareVersions(ver, v.MinAPIVersion) < 0 {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"message": "client version " + ver + " is too old. Minimum supported API version is " + v.MinAPIVersion})
			return
		}
		if rest == "containers/json" {
			w.Write([]byte("[]"))
			return
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	return srv, &paths
}

// TestNew_Engine29 negotiates against Engine 29's /version answer (API 1.52,
// minimum 1.44): the client must speak 1.44 or newer, and the Engine's
// refusal of older clients (replayed) must not trigger.
func TestNew_Engine29(t *testing.T) {
	srv, paths := fakeEngine(t, filepath.Join("testdata", "version-engine-29.json"))
	ctx := context.Background()
	c, err := New(ctx, "tcp://"+strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if compareVersions(c.APIVersion(), "1.44") < 0 {
		t.Fatalf("negotiated %s with Engine 29; it refuses below 1.44", c.APIVersion())
	}
	if _, err := c.List(ctx, ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if last := (*paths)[len(*paths)-1]; last != "/v"+c.APIVersion()+"/containers/json" {
		t.Fatalf("request went to %s", last)
	}
}

func TestPick(t *testing.T) {
	for _, tc := range []struct{ max, min, want, err string }{
		{"1.41", "1.12", "1.41", ""},           // Engine 20.10
		{"1.52", "1.44", MaxAPIVersion, ""},    // Engine 29
		{"1.47", "1.24", "1.47", ""},           // Engine 27
		{"1.40", "1.12", "", "older than"},     // Engine 19.03
		{"1.60", "1.55", "", "and newer only"}, // a future Engine past our range
		{"", "", "", "no API version"},
	} {
		got, err := pick(tc.max, tc.min)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("pick(%s, %s) = %s, %v; want an error with %q", tc.max, tc.min, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("pick(%s, %s) = %s, %v; want %s", tc.max, tc.min, got, err, tc.want)
		}
	}
}

// TestNew_BadHost: each wrong host is one readable line naming it.
func TestNew_BadHost(t *testing.T) {
	dir := t.TempDir()
	notSock := filepath.Join(dir, "plain-file")
	os.WriteFile(notSock, nil, 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct{ host, want string }{
		{"unix://" + filepath.Join(dir, "missing.sock"), "no socket at"},
		{"unix://" + notSock, "no Engine answers"},
		{"ssh://user@host", "unsupported scheme"},
		{"tcp://127.0.0.1:1", "no Engine answers"},
	} {
		_, err := New(ctx, tc.host)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("New(%s): %v; want one line with %q", tc.host, err, tc.want)
		}
	}
}

// boxImage builds the test image (the box program FROM scratch) once per test.
func boxImage(t *testing.T) string {
	tag := testenv.UniqueName(t) + ":box"
	box := testenv.StaticBinary(t, "github.com/vwstream/vwstream/internal/docker/testdata/box", t.TempDir())
	testenv.BuildImage(t, tag, "FROM scratch\nCOPY box /box\nENTRYPOINT [\"/box\"]\nCMD [\"run\"]\n", map[string]string{"box": box})
	return tag
}

// TestClient_ExecStopStart drives a real container: commands run inside it
// with their output split by stream and their exit code, as another user;
// stop and start change its state; a missing container is ErrNotFound.
func TestClient_ExecStopStart(t *testing.T) {
	testenv.Docker(t)
	img := boxImage(t)
	name := testenv.UniqueName(t)
	testenv.RemoveContainers(t, name)
	testenv.DockerRun(t, "run", "-d", "--name", name, "--label", "vwstream.test=1", img)
	ctx := context.Background()
	c, err := New(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	list, err := c.List(ctx, ListOptions{Labels: []string{"vwstream.test=1"}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ct := range list {
		found = found || ct.Name() == name
	}
	if !found {
		t.Fatalf("listing by label misses %s: %+v", name, list)
	}

	var out, errOut bytes.Buffer
	code, err := c.Exec(ctx, name, ExecOptions{Cmd: []string{"/box", "echo", "hello", "world"}}, &out, &errOut)
	if err != nil || code != 0 || out.String() != "hello world\n" || errOut.String() != "err\n" {
		t.Fatalf("exec echo: code %d err %v stdout %q stderr %q", code, err, out.String(), errOut.String())
	}
	if code, err := c.Exec(ctx, name, ExecOptions{Cmd: []string{"/box", "exit", "3"}}, nil, nil); err != nil || code != 3 {
		t.Fatalf("exec exit 3: code %d err %v", code, err)
	}
	out.Reset()
	if code, err := c.Exec(ctx, name, ExecOptions{Cmd: []string{"/box", "id"}, User: "1234"}, &out, nil); err != nil || code != 0 || out.String() != "1234\n" {
		t.Fatalf("exec as 1234: code %d err %v out %q", code, err, out.String())
	}

	if err := c.Stop(ctx, name, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	info, err := c.Inspect(ctx, name)
	if err != nil || info.State.Running {
		t.Fatalf("after stop: %+v %v", info, err)
	}
	if err := c.Stop(ctx, name, 0); err != nil {
		t.Fatalf("stopping a stopped container: %v", err)
	}
	if err := c.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	if info, err = c.Inspect(ctx, name); err != nil || !info.State.Running {
		t.Fatalf("after start: %+v %v", info, err)
	}
	if _, err := c.Inspect(ctx, name+"-missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("inspect of a missing container: %v", err)
	}
}

// TestClient_Replace walks what an image updater does: the running
// container's configuration read raw, a replacement created from it under a
// new name, the old one removed, the new one renamed and started; a pull from
// a registry that does not answer is one readable error.
func TestClient_Replace(t *testing.T) {
	testenv.Docker(t)
	img := boxImage(t)
	name := testenv.UniqueName(t)
	testenv.RemoveContainers(t, name, name+"-new")
	testenv.DockerRun(t, "run", "-d", "--name", name, "--label", "vwstream.test=replace", "-e", "KEEP=1", img)
	ctx := context.Background()
	c, err := New(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	raw, err := c.InspectRaw(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var old struct {
		Config     json.RawMessage
		HostConfig json.RawMessage
	}
	if err := json.Unmarshal(raw, &old); err != nil {
		t.Fatal(err)
	}
	if id, err := c.ImageID(ctx, img); err != nil || !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("image id: %q %v", id, err)
	}
	id, err := c.Create(ctx, CreateOptions{Name: name + "-new", Config: old.Config, HostConfig: old.HostConfig})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(ctx, name, RemoveOptions{Force: true, Volumes: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename(ctx, id, name); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	info, err := c.Inspect(ctx, name)
	if err != nil || info.ID != id || !info.State.Running || info.Config.Labels["vwstream.test"] != "replace" {
		t.Fatalf("replacement: %+v %v", info, err)
	}
	err = c.Pull(ctx, "127.0.0.1:1/vwstream-test/none:latest")
	if err == nil || !strings.HasPrefix(err.Error(), "docker ") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("pull from nowhere: %v", err)
	}
	t.Logf("pull from nowhere: %v", err)
}
