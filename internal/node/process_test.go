package node_test

// Process tests: the real vwstream binary supervises the real vwload stand-in
// against the test S3 server, and is stopped the ways a container is stopped
// (SIGTERM, kill -9). Helpers shared with lease_test.go live here.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/node"
	"github.com/vwstream/vwstream/internal/restore"
	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vault"
	"github.com/vwstream/vwstream/internal/vaultsim"
	"github.com/vwstream/vwstream/internal/wiring"
)

// testPassphrase is the passphrase s3Config wraps the bucket key with.
const testPassphrase = "node test passphrase"

// binPrefix names the folders the binaries are built into; ones older than
// binMaxAge are left over from earlier runs and removed.
const ()

// binaries builds vwstream and vwload once per test binary.
func binaries(t *testing.T) (vwstream, vwload string) {
	b := testenv.Binaries(t, "github.com/vwstream/vwstream/cmd/vwstream", "github.com/vwstream/vwstream/cmd/vwload")
	return b[0], b[1]
}

// runEnv is the environment of a vwstream process working on the data folder
// dir against s, with the key s3Config created. AWS_CA_BUNDLE stays as the
// machine sets it: users set it too.
func runEnv(s testenv.S3, dir string, extra ...string) []string {
	env := append(os.Environ(),
		"DATA_FOLDER="+dir,
		"S3_BUCKET="+s.Bucket, "S3_ENDPOINT="+s.Endpoint, "S3_REGION="+s.Region,
		"S3_ACCESS_KEY_ID="+s.AccessKey, "S3_SECRET_ACCESS_KEY="+s.SecretKey,
		"ENCRYPTION_PASSPHRASE="+testPassphrase,
		"LITESTREAM_SYNC_INTERVAL=1s", "LITESTREAM_SHUTDOWN_TIMEOUT=10s", "SYNC_SHUTDOWN_TIMEOUT=10s",
		"STATUS_ADDR=off", "STATUS_FILE="+filepath.Join(filepath.Dir(dir), "status.json"),
	)
	return append(env, extra...)
}

// proc is a started vwstream process. Its output is kept and logged if the
// test fails; a process still running when the test ends is stopped.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stderr testenv.SyncBuffer
	stdout testenv.SyncBuffer
	done   chan struct{}
	code   int
}

func startProc(t *testing.T, name string, env []string, argv ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	// An orphaned child keeps the output pipes open after kill -9; do not wait for it.
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", name, p.stdout.String(), name, p.stderr.String())
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) signal(sig syscall.Signal) {
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %s: %v", p.name, err)
	}
}

// wait returns the exit code, failing the test if the process runs past timeout.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		p.t.Fatalf("%s still running after %s", p.name, timeout)
		return -1
	}
}

// waitStatus polls GET /status on addr until ok accepts the document, failing
// the test when the process exits first or timeout passes.
func waitStatus(t *testing.T, p *proc, addr, what string, ok func(*status.Status) bool) *status.Status {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if p.exited() {
			t.Fatalf("%s exited with code %d while waiting for %s", p.name, p.code, what)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		doc, err := status.Fetch(ctx, addr)
		cancel()
		if err == nil && ok(doc) {
			return doc
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: no %s within 60 s (last error: %v)", p.name, what, last)
	return nil
}

// replicating is a primary that runs its child and has replicated something.
func replicating(doc *status.Status) bool {
	return doc.Status == status.StateOK && doc.DB != nil && doc.DB.TXIDReplicated > 0
}

// command runs one short vwstream command and returns its exit code and output.
func command(t *testing.T, env []string, argv ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s: %v", strings.Join(argv, " "), err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// createVault makes a small Vaultwarden-shaped data folder.
func createVault(t *testing.T, dir string, seed int64) {
	t.Helper()
	v, err := vaultsim.Create(dir, vaultsim.Options{Seed: seed, Size: vaultsim.SizeSmall})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
}

// restoreAll restores the replica, database and files, into a fresh folder.
func restoreAll(t *testing.T, cfg *config.Config) string {
	t.Helper()
	ctx := context.Background()
	view, err := dataViewFor(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	if _, err := restore.Replica(ctx, restore.Options{Store: view, Dir: dir, Files: wiring.RestoreFiles(cfg, view)}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	return dir
}

// userFiles hashes the files Vaultwarden's users wrote (attachments, sends) and
// its key, by path relative to dir.
func userFiles(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	for _, sub := range []string{"attachments", "sends", "rsa_key.pem"} {
		err := filepath.WalkDir(filepath.Join(dir, sub), func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			out[rel] = sha256.Sum256(b)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRun_SIGTERMDuringWrites: the binary supervises a stand-in that commits
// 100 tx/s and uploads attachments; while it runs, the status surfaces report a
// healthy primary; SIGTERM ends it with exit code 0, and at that moment every
// committed transaction and every written file is in S3.
func TestRun_SIGTERMDuringWrites(t *testing.T) {
	vwstream, vwload := binaries(t)
	s := testenv.NewS3(t)
	work := t.TempDir()
	data := filepath.Join(work, "data")
	createVault(t, data, 11)
	cfg := s3Config(t, s, data)
	ledger := filepath.Join(work, "ledger")
	statusFile := filepath.Join(work, "status.json")
	statusAddr, aliveAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	env := runEnv(s, data, "STATUS_FILE="+statusFile, "STATUS_ADDR="+statusAddr)
	filesBefore := len(userFiles(t, data))

	p := startProc(t, "vwstream run", env, vwstream, "run", "--",
		vwload, "serve", "--dir", data, "--addr", aliveAddr, "--write-rate", "100", "--ledger", ledger)
	started := time.Now()
	doc := waitStatus(t, p, statusAddr, "replication", replicating)
	checkStatus(t, doc, statusFile)
	checkStatusCommands(t, vwstream, env, aliveAddr)

	time.Sleep(time.Until(started.Add(4 * time.Second)))
	stopAt := time.Now()
	p.signal(syscall.SIGTERM)
	if code := p.wait(60 * time.Second); code != 0 {
		t.Fatalf("vwstream run exited with code %d after SIGTERM, want 0", code)
	}
	t.Logf("graceful stop under write load took %s", time.Since(stopAt).Round(time.Millisecond))

	restored := restoreAll(t, cfg)
	rep, err := vaultsim.Verify(filepath.Join(restored, "db.sqlite3"), ledger, time.Time{})
	if err != nil {
		t.Fatalf("restored database lacks committed transactions: %v (%+v)", err, rep)
	}
	if rep.LedgerEntries < 200 {
		t.Fatalf("only %d transactions were committed; the test proves nothing", rep.LedgerEntries)
	}
	missing, err := vault.MissingAttachments(filepath.Join(restored, "db.sqlite3"), filepath.Join(restored, "attachments"))
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Fatalf("%d attachment rows without their file after restore, first %+v", len(missing), missing[0])
	}
	written, got := userFiles(t, data), userFiles(t, restored)
	if len(written) <= filesBefore {
		t.Fatalf("the stand-in wrote no file (%d before, %d after); the test proves nothing", filesBefore, len(written))
	}
	for path, sum := range written {
		if g, ok := got[path]; !ok {
			t.Errorf("%s was written but is not in S3", path)
		} else if g != sum {
			t.Errorf("%s in S3 differs from the file written", path)
		}
	}
}

// checkStatus checks GET /status and STATUS_FILE of a running primary.
func checkStatus(t *testing.T, doc *status.Status, statusFile string) {
	t.Helper()
	if doc.Role != config.RolePrimary {
		t.Errorf("status role = %q, want primary", doc.Role)
	}
	if doc.Lease == nil || !doc.Lease.Ours || doc.Lease.Holder == "" {
		t.Errorf("status lease = %+v, want held by this node", doc.Lease)
	}
	if doc.Child == nil || !doc.Child.Running || doc.Child.PID == 0 {
		t.Errorf("status child = %+v, want running", doc.Child)
	}
	// The file keeps the shape of the replaced image's /tmp/sync-status.json.
	b, err := os.ReadFile(statusFile)
	if err != nil {
		t.Fatalf("status file: %v", err)
	}
	var file map[string]any
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatalf("status file is not JSON: %v\n%s", err, b)
	}
	if st, _ := file["status"].(string); st != status.StateOK && st != status.StateStarting {
		t.Errorf("status file status = %v", file["status"])
	}
	if file["role"] != string(config.RolePrimary) {
		t.Errorf("status file role = %v, want primary", file["role"])
	}
	ts, _ := file["timestamp"].(float64)
	if d := time.Since(time.Unix(int64(ts), 0)); d < -time.Second || d > 30*time.Second {
		t.Errorf("status file timestamp %v is %s from now", file["timestamp"], d)
	}
	dt, _ := file["datetime"].(string)
	if _, err := time.Parse(time.RFC3339, dt); err != nil {
		t.Errorf("status file datetime %q: %v", dt, err)
	}
}

// checkStatusCommands runs `vwstream status --json` and `vwstream healthcheck`
// against the running node, and healthcheck against a Vaultwarden that does
// not answer.
func checkStatusCommands(t *testing.T, vwstream string, env []string, aliveAddr string) {
	t.Helper()
	code, out := command(t, env, vwstream, "status", "--json")
	var doc status.Status
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || doc.Role != config.RolePrimary {
		t.Errorf("vwstream status --json: exit %d, output:\n%s", code, out)
	}
	if code, out := command(t, append(env, "ROCKET_PORT="+port(t, aliveAddr)), vwstream, "healthcheck"); code != 0 {
		t.Errorf("vwstream healthcheck (ROCKET_PORT on the stand-in): exit %d, want 0; output:\n%s", code, out)
	}
	if code, out := command(t, env, vwstream, "healthcheck", "--no-vaultwarden"); code != 0 {
		t.Errorf("vwstream healthcheck --no-vaultwarden: exit %d, want 0; output:\n%s", code, out)
	}
	if code, out := command(t, append(env, "ROCKET_PORT="+port(t, testenv.FreeAddr(t))), vwstream, "healthcheck"); code != 1 {
		t.Errorf("vwstream healthcheck with nothing on ROCKET_PORT: exit %d, want 1; output:\n%s", code, out)
	}
}

// TestRun_KillNineThenRestart: kill -9 of the node (and of its child's process
// group, as a crashed container loses both) loses at most the replication
// interval; a restart on the same volume resumes from the local database (no
// restore over newer local data) and then replicates what the replica missed.
func TestRun_KillNineThenRestart(t *testing.T) {
	vwstream, vwload := binaries(t)
	s := testenv.NewS3(t)
	work := t.TempDir()
	data := filepath.Join(work, "data")
	createVault(t, data, 12)
	// A long TTL: the restart must not wait for the dead node's lease to expire.
	cfg := s3Config(t, s, data, "LEASE_TTL=120s", "LEASE_RENEW_INTERVAL=1s")
	ledger := filepath.Join(work, "ledger")
	statusAddr, aliveAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	env := runEnv(s, data, "STATUS_ADDR="+statusAddr, "LEASE_TTL=120s", "LEASE_RENEW_INTERVAL=1s")
	serve := []string{vwload, "serve", "--dir", data, "--addr", aliveAddr, "--write-rate", "100", "--ledger", ledger}

	p := startProc(t, "vwstream run (killed)", env, append([]string{vwstream, "run", "--"}, serve...)...)
	doc := waitStatus(t, p, statusAddr, "replication", replicating)
	time.Sleep(4 * time.Second)
	child := doc.Child.PID
	p.signal(syscall.SIGKILL)
	killedAt := time.Now()
	_ = syscall.Kill(-child, syscall.SIGKILL) // the stand-in runs in its own process group
	p.wait(30 * time.Second)

	// What the replica holds: everything committed up to one sync interval
	// (LITESTREAM_SYNC_INTERVAL=1s) plus one second of slack before the kill.
	rep, err := vaultsim.Verify(filepath.Join(restoreAll(t, cfg), "db.sqlite3"), ledger, killedAt.Add(-2*time.Second))
	if err != nil {
		t.Fatalf("after kill -9 the replica lost more than the sync interval: %v (%+v)", err, rep)
	}
	if rep.Required < 100 {
		t.Fatalf("only %d transactions committed before the cutoff; the test proves nothing", rep.Required)
	}
	t.Logf("kill -9: %d of %d committed transactions were in S3", rep.DBSeqs, rep.LedgerEntries)

	// The restart on the same volume takes over the lease its dead predecessor
	// left behind at once, without waiting for it to expire.
	t.Logf("restarting %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	p2 := startProc(t, "vwstream run (restarted)", env, append([]string{vwstream, "run", "--"}, serve...)...)
	waitStatus(t, p2, statusAddr, "replication after restart", replicating)
	t.Logf("replicating again %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	time.Sleep(time.Second)
	p2.signal(syscall.SIGTERM)
	if code := p2.wait(60 * time.Second); code != 0 {
		t.Fatalf("restarted vwstream run exited with code %d after SIGTERM, want 0", code)
	}
	if !strings.Contains(p2.stderr.String(), "state=resume") {
		t.Errorf("restart on the same volume did not resume from the local database; log:\n%s", p2.stderr.String())
	}
	// Every transaction of both runs is in S3: the restart kept and replicated the
	// local transactions the replica missed, instead of restoring over them.
	rep, err = vaultsim.Verify(filepath.Join(restoreAll(t, cfg), "db.sqlite3"), ledger, time.Time{})
	if err != nil {
		t.Fatalf("after the restart: %v (%+v)", err, rep)
	}
}

// TestRun_StaleVolumeRefused: a volume holding another, older database than the
// replica is refused with exit code 1 and one line saying why, before the child
// starts.
func TestRun_StaleVolumeRefused(t *testing.T) {
	vwstream, _ := binaries(t)
	s := testenv.NewS3(t)
	work := t.TempDir()
	data := filepath.Join(work, "data")
	createVault(t, data, 13)
	v, err := vaultsim.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vaultsim.NewWorkload(v, vaultsim.WorkloadOptions{Rate: -1, Count: 50}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	v.Close()
	s3Config(t, s, data)
	statusAddr := testenv.FreeAddr(t)
	env := runEnv(s, data, "STATUS_ADDR="+statusAddr)

	p := startProc(t, "vwstream run (sidecar)", env, vwstream, "run")
	waitStatus(t, p, statusAddr, "replication", replicating)
	p.signal(syscall.SIGTERM)
	if code := p.wait(60 * time.Second); code != 0 {
		t.Fatalf("first run exited with code %d, want 0", code)
	}

	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	createVault(t, data, 99)
	marker := filepath.Join(work, "child-ran")
	code, out := command(t, env, vwstream, "run", "--", "touch", marker)
	if code != 1 {
		t.Fatalf("run on a stale volume: exit %d, want 1; output:\n%s", code, out)
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "vwstream run:") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], node.ErrStale.Error()) {
		t.Fatalf("want one line explaining the stale volume, got %q; output:\n%s", lines, out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the child was started on a stale volume")
	}
}
