package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// DockerSocket is the Engine the tests use.
const DockerSocket = "/var/run/docker.sock"

// Docker returns the docker command-line tool after checking that the Engine
// answers; under CI a missing tool or Engine fails the test.
func Docker(t testing.TB) string {
	t.Helper()
	bin := Tool(t, "docker")
	if out, err := exec.Command(bin, "version", "--format", "{{.Server.APIVersion}}").CombinedOutput(); err != nil {
		unavailable(t, "docker engine not reachable: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return bin
}

// UniqueName is a name for Docker resources of one test: a fixed prefix
// (vwstream-test-) and random hex, so leftovers are recognisable and tests
// running at once never collide.
func UniqueName(t testing.TB) string {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "vwstream-test-" + hex.EncodeToString(b[:])
}

// StaticBinary builds the command at import path pkg with CGO_ENABLED=0, so
// it runs in an image built FROM scratch, into dir and returns its path.
func StaticBinary(t testing.TB, pkg, dir string) string {
	t.Helper()
	exe := filepath.Join(dir, path.Base(pkg))
	cmd := exec.Command("go", "build", "-trimpath", "-o", exe, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return exe
}

// BuildImage builds tag from dockerfile with a context folder holding files
// (name in the context -> path on disk, copied; a name ending in / with an
// empty path is an empty folder with mode 1777, as /tmp) and removes the
// image when the test ends.
func BuildImage(t testing.TB, tag, dockerfile string, files map[string]string) {
	t.Helper()
	docker := Docker(t)
	ctxDir := t.TempDir()
	for name, src := range files {
		if strings.HasSuffix(name, "/") && src == "" {
			d := filepath.Join(ctxDir, name)
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(d, 0o1777|os.ModeSticky); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ctxDir, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exec.Command(docker, "rmi", "-f", tag).Run() })
	cmd := exec.Command(docker, "build", "-q", "-t", tag, ctxDir)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build %s: %v\n%s", tag, err, out)
	}
}

// DockerRun runs `docker <args>` and returns its trimmed output, failing the
// test on an error.
func DockerRun(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(Docker(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// RemoveContainers force-removes containers (and their anonymous volumes)
// when the test ends, whatever state they are in.
func RemoveContainers(t testing.TB, names ...string) {
	t.Helper()
	docker := Docker(t)
	t.Cleanup(func() {
		for _, n := range names {
			_ = exec.Command(docker, "rm", "-f", "-v", n).Run()
		}
	})
}

// RemoveVolumes removes named volumes when the test ends.
func RemoveVolumes(t testing.TB, names ...string) {
	t.Helper()
	docker := Docker(t)
	t.Cleanup(func() {
		for _, n := range names {
			if out, err := exec.Command(docker, "volume", "rm", "-f", n).CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "docker volume rm %s: %v %s\n", n, err, out)
			}
		}
	})
}
