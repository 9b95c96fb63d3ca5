package deploy

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

const e2ePassphrase = "correct horse battery staple"

// TestComposeSidecar_UpDownLosesNothing runs deploy/compose.sidecar.yml with
// docker-compose on locally built images: the Dockerfile's sidecar stage and, in
// Vaultwarden's place, a stand-in (vwload serve writing with a ledger, with a
// health check). vwstream replicates from its own container; after `stop` and
// `down` a restore from the target holds every transaction of the ledger.
// The target is a folder (LOCAL_TARGET) bind-mounted into the sidecar.
func TestComposeSidecar_UpDownLosesNothing(t *testing.T) { composeE2E(t, false) }

// TestComposeSidecar_StopsVaultwardenForSnapshots adds
// compose.sidecar.containers.yml and snapshots every minute (the shortest
// BACKUP_CRON accepted): vwstream stops the labelled stand-in through the
// mounted socket and starts it again, a snapshot is stored, and nothing of the
// ledger is lost.
func TestComposeSidecar_StopsVaultwardenForSnapshots(t *testing.T) { composeE2E(t, true) }

func composeE2E(t *testing.T, containerOps bool) {
	compose := testenv.Tool(t, "docker-compose")
	testenv.Docker(t)
	prefix := testenv.UniqueName(t)
	bin := t.TempDir()

	dockerfile, files := sidecarStage(t)
	files["vwstream"] = testenv.StaticBinary(t, "github.com/vwstream/vwstream/cmd/vwstream", bin)
	vwImage := prefix + ":vwstream"
	testenv.BuildImage(t, vwImage, dockerfile, files)
	standIn := prefix + ":vaultwarden"
	testenv.BuildImage(t, standIn, `FROM scratch
COPY box /box
COPY box /bin/sh
COPY vwload /vwload
COPY tmp/ /tmp
HEALTHCHECK --interval=1s --timeout=5s CMD ["/box", "get", "http://127.0.0.1:8080/alive"]
ENTRYPOINT ["/vwload", "serve", "--dir", "/data", "--addr", "127.0.0.1:8080", "--write-rate", "50", "--ledger", "/ledger/ledger"]
`, map[string]string{
		"box":    testenv.StaticBinary(t, "github.com/vwstream/vwstream/internal/docker/testdata/box", bin),
		"vwload": testenv.StaticBinary(t, "github.com/vwstream/vwstream/cmd/vwload", bin),
		"tmp/":   "",
	})

	root := t.TempDir()
	dir := filepath.Join(root, "deploy")
	data, backup, ledgerDir := filepath.Join(root, "data"), filepath.Join(root, "backup"), filepath.Join(root, "ledger")
	layout(t, dir, e2ePassphrase, "compose.sidecar.yml", "compose.sidecar.containers.yml")
	for _, d := range []string{backup, ledgerDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	v, err := vaultsim.Create(data, vaultsim.Options{Seed: 5, Size: "small"})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	// The test's own layer: folders instead of the named volume, a folder
	// target; the files under test stay as shipped.
	override := `services:
  vwstream:
    environment:
      LOCAL_TARGET: /backup
      LOG_LEVEL: debug
      BACKUP_ENABLED: "` + strconv.FormatBool(containerOps) + `"
      BACKUP_CRON: "@every 1m"
    volumes:
      - ` + data + `:/data
      - ` + backup + `:/backup
  vaultwarden:
    volumes:
      - ` + data + `:/data
      - ` + ledgerDir + `:/ledger
`
	if err := os.WriteFile(filepath.Join(dir, "test.override.yml"), []byte(override), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "VWSTREAM_IMAGE="+vwImage, "VAULTWARDEN_IMAGE="+standIn, "VAULTWARDEN_PORT=127.0.0.1:"+freePort(t))
	project := strings.ReplaceAll(prefix, "-", "")
	composeCmd := func(args ...string) *exec.Cmd {
		files := []string{"-p", project, "-f", "compose.sidecar.yml"}
		if containerOps {
			files = append(files, "-f", "compose.sidecar.containers.yml")
		}
		cmd := exec.Command(compose, append(append(files, "-f", "test.override.yml"), args...)...)
		cmd.Dir, cmd.Env = dir, env
		return cmd
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := composeCmd(args...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := composeCmd("logs", "--no-color", "--tail", "60").CombinedOutput()
			t.Logf("compose logs:\n%s", out)
		}
		_ = composeCmd("down", "-v", "--remove-orphans").Run()
	})
	run("up", "-d", "--no-build")

	ledger := filepath.Join(ledgerDir, "ledger")
	vw := strings.TrimSpace(run("ps", "-q", "vaultwarden"))
	firstStart := testenv.DockerRun(t, "inspect", "--format", "{{.State.StartedAt}}", vw)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		entries, _ := vaultsim.ReadLedger(ledger)
		done := len(entries) >= 300
		if containerOps { // and the stand-in was stopped for a snapshot, stored, and runs again
			snaps, _ := filepath.Glob(filepath.Join(backup, "vaultwarden", "snapshots", "*.tar.gz*"))
			state := testenv.DockerRun(t, "inspect", "--format", "{{.State.Running}} {{.State.StartedAt}}", vw)
			done = done && len(snaps) > 0 && strings.HasPrefix(state, "true ") && !strings.HasSuffix(state, " "+firstStart)
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 3 minutes: %d transactions written\n%s", len(entries), run("ps"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	run("stop") // Vaultwarden first (it depends on vwstream), then vwstream flushes
	run("down", "-v")

	restored := filepath.Join(root, "restored")
	vwstream := files["vwstream"]
	cmd := exec.Command(vwstream, "restore", "--to", restored)
	cmd.Env = []string{"LOCAL_TARGET=" + backup, "ENCRYPTION_PASSPHRASE=" + e2ePassphrase, "DATA_FOLDER=" + restored, "LOG_LEVEL=error"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("vwstream restore: %v\n%s", err, out)
	}
	rep, err := vaultsim.Verify(filepath.Join(restored, vaultsim.DBName), ledger, time.Now())
	if err != nil || !rep.OK() || rep.Required < 300 {
		t.Fatalf("restored copy against the ledger: %v %+v", err, rep)
	}
	t.Logf("restored %d of %d ledger transactions, integrity %s", rep.DBSeqs, rep.LedgerEntries, rep.Integrity)
}

// freePort is a loopback TCP port nothing listens on right now.
func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
