package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// sidecarStage is the Dockerfile's sidecar stage (vwstream alone, FROM
// scratch) with its COPY --from=build sources replaced by context files
// (their base names), so the test builds the shipped stage from a locally
// built static binary: nothing can be pulled where the tests run. files maps
// the context names to what the test must supply ("" for the binary).
func sidecarStage(t *testing.T) (dockerfile string, files map[string]string) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "FROM scratch AS sidecar\n")
	if i < 0 {
		t.Fatal("the Dockerfile has no FROM scratch AS sidecar stage")
	}
	stage := text[i:]
	stage = stage[:strings.Index(stage, "\nFROM ")+1]
	copyFrom := regexp.MustCompile(`(?m)^COPY --from=build (\S+) (\S+)$`)
	files = map[string]string{}
	for _, m := range copyFrom.FindAllStringSubmatch(stage, -1) {
		switch src := m[1]; {
		case strings.HasSuffix(src, "/vwstream"):
			files["vwstream"] = ""
		case strings.HasSuffix(src, "ca-certificates.crt"):
			files["ca-certificates.crt"] = "/etc/ssl/certs/ca-certificates.crt"
		case src == "/out/tmp" && m[2] == "/tmp":
			files["tmp/"] = "" // an empty folder, mode 1777
		default:
			t.Fatalf("the sidecar stage copies %s: only the binary, the CA certificates and an empty /tmp belong there", src)
		}
	}
	if len(files) != 3 {
		t.Fatalf("the sidecar stage copies %v; want the binary, the CA certificates and /tmp", files)
	}
	for _, l := range strings.Split(stage, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "RUN" {
			t.Fatalf("the sidecar stage runs commands: %s", l)
		}
	}
	stage = copyFrom.ReplaceAllStringFunc(stage, func(s string) string {
		m := copyFrom.FindStringSubmatch(s)
		return "COPY " + filepath.Base(m[1]) + " " + m[2]
	})
	return stage, files
}

// TestSidecar_Image builds the Dockerfile's sidecar stage FROM scratch with
// the project's static binary and runs it: `check` with a label variable set
// reports the Engine through the mounted socket, and fails in one line
// without it.
func TestSidecar_Image(t *testing.T) {
	testenv.Docker(t)
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err != nil {
		t.Skip("no CA bundle on this machine")
	}
	dockerfile, files := sidecarStage(t)
	files["vwstream"] = testenv.StaticBinary(t, "github.com/vwstream/vwstream/cmd/vwstream", t.TempDir())
	tag := testenv.UniqueName(t) + ":sidecar"
	testenv.BuildImage(t, tag, dockerfile, files)

	if out := testenv.DockerRun(t, "run", "--rm", tag, "version"); !strings.Contains(out, "vwstream") {
		t.Fatalf("version: %s", out)
	}
	dir := t.TempDir()
	v, err := vaultsim.Create(filepath.Join(dir, "data"), vaultsim.Options{Seed: 1, Size: "small"})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	backup := filepath.Join(dir, "backup")
	os.Mkdir(backup, 0o755)
	// No volume on /tmp: the image's own must hold STATUS_FILE's default.
	args := []string{"run", "--rm", "-v", v.Dir + ":/data", "-v", backup + ":/backup",
		"-e", "DATA_FOLDER=/data", "-e", "LOCAL_TARGET=/backup", "-e", "BACKUP_STOP_DURING_BACKUP_LABEL=true", "-e", "LOG_LEVEL=error"}
	out := testenv.DockerRun(t, append(append(args, "-v", testenv.DockerSocket+":/var/run/docker.sock"), tag, "check")...)
	if !regexp.MustCompile(`(?m)^ok\s+docker engine\s+unix:///var/run/docker.sock reachable, Engine `).MatchString(out) {
		t.Fatalf("check in the sidecar with the socket:\n%s", out)
	}
	b, err := exec.Command(testenv.Docker(t), append(args, tag, "check")...).CombinedOutput()
	if err == nil || !regexp.MustCompile(`(?m)^FAIL\s+docker engine\s+docker host unix:///var/run/docker.sock: no socket at /var/run/docker.sock`).Match(b) {
		t.Fatalf("check in the sidecar without the socket: %v\n%s", err, b)
	}
}

// TestComposeSidecar_Config: the sidecar compose file runs the official
// Vaultwarden image untouched and mounts the Docker socket only with the
// container-operations file added; both normalise with docker-compose.
func TestComposeSidecar_Config(t *testing.T) {
	compose := testenv.Tool(t, "docker-compose")
	dir := layout(t, filepath.Join(t.TempDir(), "deploy"), "x", "compose.sidecar.yml", "compose.sidecar.containers.yml", "Dockerfile")
	config := func(files ...string) string {
		args := []string{}
		for _, f := range files {
			args = append(args, "-f", filepath.Join(dir, f))
		}
		cmd := exec.Command(compose, append(args, "config")...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker-compose config: %v\n%s", err, out)
		}
		return string(out)
	}
	base := config("compose.sidecar.yml")
	if strings.Contains(base, "docker.sock") {
		t.Errorf("the base sidecar file mounts the Docker socket:\n%s", base)
	}
	vw := base[strings.Index(base, "  vaultwarden:"):]
	if !strings.Contains(vw, "image: vaultwarden/server:") || strings.Contains(vw[:strings.Index(vw, "\n  vwstream:")+1], "build:") {
		t.Errorf("vaultwarden is not the official image untouched:\n%s", base)
	}
	ops := config("compose.sidecar.yml", "compose.sidecar.containers.yml")
	if !strings.Contains(ops, "/var/run/docker.sock") || !strings.Contains(ops, "BACKUP_STOP_DURING_BACKUP_LABEL") ||
		!strings.Contains(ops, "docker-volume-backup.stop-during-backup") {
		t.Errorf("the container-operations file does not add the socket, the variable and the label:\n%s", ops)
	}
}
