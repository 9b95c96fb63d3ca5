// Package deploy holds the container files; its tests check them against the
// code, and build the Dockerfile's sidecar stage against the Docker Engine
// (nothing can be pulled where the tests run, so the images that start from
// Vaultwarden's or Go's are not built here).
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/node"
	"github.com/vwstream/vwstream/internal/testenv"
)

// TestCompose_Config runs `docker-compose config` on the compose file, laid out
// with a .env from .env.example and the secrets it names, as a user would.
func TestCompose_Config(t *testing.T) {
	compose := testenv.Tool(t, "docker-compose")
	dir := layout(t, filepath.Join(t.TempDir(), "deploy"), "x", "docker-compose.yml", "Dockerfile")
	cmd := exec.Command(compose, "-f", filepath.Join(dir, "docker-compose.yml"), "config")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "stop_grace_period") {
		t.Errorf("normalised config lost stop_grace_period:\n%s", out)
	}
}

// TestCompose_GracePeriodCoversShutdown: Docker must not SIGKILL the node
// before its default shutdown budget has run out.
func TestCompose_GracePeriodCoversShutdown(t *testing.T) {
	b, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*stop_grace_period:\s*(\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("docker-compose.yml sets no stop_grace_period")
	}
	grace, err := time.ParseDuration(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(nil, nil, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	if budget := node.ShutdownBudget(cfg); grace <= budget {
		t.Fatalf("stop_grace_period %s does not exceed the shutdown budget %s", grace, budget)
	}
}

// TestDockerfile_RunsVwstream: the image's entrypoint is the supervisor and its
// health check is ours.
func TestDockerfile_RunsVwstream(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`ENTRYPOINT ["/usr/local/bin/vwstream", "run", "--"]`,
		`CMD ["/start.sh"]`,
		`CMD ["/usr/local/bin/vwstream", "healthcheck"]`,
		"./cmd/vwstream",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
}

// layout lays out the named files of deploy/ in dir as a user would: .env from
// .env.example and the two secrets the compose files name (the encryption
// passphrase given). It returns dir.
func layout(t *testing.T, dir, passphrase string, files ...string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range append(files, ".env.example") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if f == ".env.example" {
			f = ".env"
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for s, v := range map[string]string{"s3_secret_access_key": "x", "encryption_passphrase": passphrase} {
		if err := os.WriteFile(filepath.Join(dir, "secrets", s), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
