package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/update"
)

// TestUpdate_Command: `vwstream update` against a registry on loopback: the
// dry run and monitor only list the new image and change nothing, a real pass
// replaces the container, and a wrong variable or a missing Engine is one line.
func TestUpdate_Command(t *testing.T) {
	testenv.Docker(t)
	reg, prefix := testenv.Registry(t), testenv.UniqueName(t)
	box := testenv.StaticBinary(t, "github.com/vwstream/vwstream/internal/docker/testdata/box", t.TempDir())
	ref := reg + "/" + prefix + ":latest"
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", ref).Run() })
	for _, v := range []string{"1", "2"} {
		df := "FROM scratch\nCOPY box /box\nLABEL org.opencontainers.image.version=" + v + " vwstream.test=" + prefix + "\nENTRYPOINT [\"/box\"]\nCMD [\"run\"]\n"
		testenv.BuildImage(t, prefix+":v"+v, df, map[string]string{"box": box})
		id := testenv.DockerRun(t, "image", "inspect", "--format", "{{.Id}}", prefix+":v"+v)
		t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", id).Run() })
	}
	push := func(v string) {
		testenv.DockerRun(t, "tag", prefix+":v"+v, ref)
		testenv.DockerRun(t, "push", "-q", ref)
	}
	push("1")
	name := prefix + "-app"
	testenv.RemoveContainers(t, name, name+update.AsideSuffix)
	testenv.DockerRun(t, "run", "-d", "--name", name, "--label", "vwstream.update=true", "--label", update.LabelScope+"="+prefix, ref)
	oldID := testenv.DockerRun(t, "inspect", "--format", "{{.Id}}", name)
	push("2")

	env := []string{"LOG_LEVEL=error", "DATA_FOLDER=" + t.TempDir(), "LOCAL_TARGET=" + filepath.Join(t.TempDir(), "backup"),
		"UPDATE_STABLE_FOR=1s", "DOCKER_CONFIG=" + t.TempDir(), "UPDATE_SCOPE=" + prefix}
	item := func(out string) update.Item {
		var rep update.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, it := range rep.Items {
			if it.Container == name {
				return it
			}
		}
		t.Fatalf("%s not in the report:\n%s", name, out)
		return update.Item{}
	}
	for _, c := range []struct {
		env  []string
		args []string
	}{{env, []string{"update", "--dry-run", "--json"}}, {append(env, "UPDATE_MONITOR_ONLY=true"), []string{"update", "--json"}}} {
		code, out, stderr := invoke(t, c.env, c.args...)
		it := item(out)
		if code != exitOK || it.Action != update.ActionAvailable || it.OldVersion != "1" || !strings.HasPrefix(it.NewDigest, "sha256:") || it.NewDigest == it.OldDigest {
			t.Fatalf("%v: exit %d %+v\n%s", c.args, code, it, stderr)
		}
		if id := testenv.DockerRun(t, "inspect", "--format", "{{.Id}}", name); id != oldID {
			t.Fatalf("%v changed the container", c.args)
		}
	}

	code, _, stderr := invoke(t, append(env, "UPDATE_HEALTH_TIMEOUT=soon"), "update")
	if code != exitUsage || !strings.Contains(stderr, "UPDATE_HEALTH_TIMEOUT") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("bad variable: exit %d %q", code, stderr)
	}
	code, _, stderr = invoke(t, append(env, "DOCKER_HOST=unix://"+filepath.Join(t.TempDir(), "no.sock")), "update")
	if code != exitFailure || !strings.Contains(stderr, "no socket at") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("no Engine: exit %d %q", code, stderr)
	}

	code, out, stderr := invoke(t, env, "update")
	if code != exitOK || !strings.Contains(out, name+" ("+ref+"): updated") || !strings.Contains(out, "(version 2)") {
		t.Fatalf("update: exit %d\n%s%s", code, out, stderr)
	}
	if id := testenv.DockerRun(t, "inspect", "--format", "{{.Id}}", name); id == oldID {
		t.Fatalf("not replaced")
	}
}

// TestRun_UpdatesNeedTheEngine: with UPDATE_ENABLED, run refuses to start
// without the Engine, in one line naming the variable.
func TestRun_UpdatesNeedTheEngine(t *testing.T) {
	dir := t.TempDir()
	env := []string{"LOG_LEVEL=error", "DATA_FOLDER=" + filepath.Join(dir, "data"), "LOCAL_TARGET=" + filepath.Join(dir, "backup"),
		"UPDATE_ENABLED=true", "DOCKER_HOST=unix://" + filepath.Join(dir, "no.sock")}
	code, out, stderr := invoke(t, env, "run")
	if code == exitOK || !strings.Contains(stderr, "UPDATE_ENABLED") || !strings.Contains(stderr, "no socket at") {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
}
