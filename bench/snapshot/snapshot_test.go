// Package snapshot_test compares `vwstream backup` with the shell pipeline the
// replaced backup containers run (sqlite3 .backup, tar czf, gpg -c, upload) on
// the same data folder and the same S3 server. It is opt-in and slow:
//
//	VWSTREAM_BENCH=1 go test ./bench/snapshot -run TestCompare -v -timeout 60m
//
// The vault (100 MB database + 900 MB attachments) is generated once and
// cached in $VWSTREAM_BENCH_VAULT (default: $TMPDIR/vwstream-bench-vault).
// Results are recorded in RESULTS.md.
package snapshot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

const passphrase = "bench passphrase"

// vault returns the cached bench data folder, building it when missing.
func vault(t *testing.T) string {
	dir := os.Getenv("VWSTREAM_BENCH_VAULT")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "vwstream-bench-vault")
	}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	start := time.Now()
	// With the large preset's users and folders, 44k ciphers and 66k events
	// give a database of about 100 MB; 900 attachments of 1 MiB of
	// random bytes (Bitwarden attachments are encrypted, so incompressible).
	v, err := vaultsim.Create(dir, vaultsim.Options{Seed: 1, Size: vaultsim.SizeLarge, Ciphers: 44000, Events: 66000,
		Attachments: 900, AttachmentMinSize: 1 << 20, AttachmentMaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("vault built in %s", time.Since(start).Round(time.Second))
	return dir
}

// measured is one side's figures.
type measured struct {
	Wall     time.Duration
	PeakRSS  int64         // bytes, the largest of the processes involved
	TempDisk int64         // bytes written to disk outside the data folder's own files
	Size     int64         // bytes uploaded
	CPU      time.Duration // user + system time of the vwstream process
}

func TestCompare(t *testing.T) {
	if os.Getenv("VWSTREAM_BENCH") != "1" {
		t.Skip("set VWSTREAM_BENCH=1 to run the snapshot benchmark")
	}
	env := testenv.NewS3(t)
	for _, tool := range []string{"sqlite3", "tar", "gpg", "gzip"} {
		testenv.Tool(t, tool)
	}
	dir := vault(t)
	work := t.TempDir()
	bin := os.Getenv("VWSTREAM_BENCH_BIN") // a prebuilt binary, else built here
	if bin == "" {
		bin = testenv.Binaries(t, "github.com/vwstream/vwstream/cmd/vwstream")[0]
	}
	// A second prebuilt binary (an earlier version) run beside this one in
	// every run, with verification on: their ratio, measured under the same load.
	base := os.Getenv("VWSTREAM_BENCH_BASE_BIN")
	runs := 2
	if n, err := strconv.Atoi(os.Getenv("VWSTREAM_BENCH_RUNS")); err == nil && n > 0 {
		runs = n
	}
	for i := 0; i < runs; i++ {
		if os.Getenv("VWSTREAM_BENCH_ONLY") == "vwstream" {
			vw := vwstreamBackup(t, env, bin, dir, "true")
			vwNoVerify := vwstreamBackup(t, env, bin, dir, "false")
			t.Logf("run %d: vwstream (verify) %s rss %.1f MiB; (no verify) %s rss %.1f MiB", i+1,
				vw.Wall.Round(time.Millisecond), mib(vw.PeakRSS), vwNoVerify.Wall.Round(time.Millisecond), mib(vwNoVerify.PeakRSS))
			continue
		}
		t.Logf("run %d: load average %s", i+1, testenv.LoadAverage())
		shell := shellPipeline(t, env, dir, work, i)
		vw := vwstreamBackup(t, env, bin, dir, "true")
		vwNoVerify := vwstreamBackup(t, env, bin, dir, "false")
		t.Logf("run %d: shell %s rss %.1f MiB temp %.1f MiB size %.1f MiB", i+1, shell.Wall.Round(time.Millisecond), mib(shell.PeakRSS), mib(shell.TempDisk), mib(shell.Size))
		t.Logf("run %d: vwstream (verify) %s rss %.1f MiB temp %.1f MiB size %.1f MiB ratio %.2f", i+1, vw.Wall.Round(time.Millisecond), mib(vw.PeakRSS), mib(vw.TempDisk), mib(vw.Size), vw.Wall.Seconds()/shell.Wall.Seconds())
		t.Logf("run %d: vwstream (no verify) %s rss %.1f MiB ratio %.2f", i+1, vwNoVerify.Wall.Round(time.Millisecond), mib(vwNoVerify.PeakRSS), vwNoVerify.Wall.Seconds()/shell.Wall.Seconds())
		t.Logf("run %d: vwstream CPU %s (verify), %s (no verify)", i+1, vw.CPU.Round(time.Millisecond), vwNoVerify.CPU.Round(time.Millisecond))
		if base != "" {
			b := vwstreamBackup(t, env, base, dir, "true")
			t.Logf("run %d: base (verify) %s rss %.1f MiB temp %.1f MiB size %.1f MiB ratio %.2f; this build / base %.2f", i+1, b.Wall.Round(time.Millisecond),
				mib(b.PeakRSS), mib(b.TempDisk), mib(b.Size), b.Wall.Seconds()/shell.Wall.Seconds(), vw.Wall.Seconds()/b.Wall.Seconds())
			t.Logf("run %d: base CPU %s (verify); this build / base %.2f", i+1, b.CPU.Round(time.Millisecond), vw.CPU.Seconds()/b.CPU.Seconds())
		}
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func vwstreamBackup(t *testing.T, env testenv.S3, bin, dir, verify string) measured {
	t.Helper()
	cmd := exec.Command(bin, "backup", "--json")
	cmd.Env = append(os.Environ(),
		"DATA_FOLDER="+dir, "S3_BUCKET="+env.Bucket, "S3_ENDPOINT="+env.Endpoint, "S3_REGION="+env.Region,
		"S3_ACCESS_KEY_ID="+env.AccessKey, "S3_SECRET_ACCESS_KEY="+env.SecretKey, "S3_FORCE_PATH_STYLE=true",
		"GPG_PASSPHRASE="+passphrase, "ENCRYPTION_PASSPHRASE="+passphrase, "BACKUP_VERIFY="+verify,
		"BACKUP_RETENTION_DAYS=0", "LOG_LEVEL=warn")
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("vwstream backup: %v\n%s", err, out.String())
	}
	wall := time.Since(start)
	var res struct {
		Size        int64 `json:"size"`
		DBCopyBytes int64 `json:"db_copy_bytes"`
	}
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("backup --json: %v\n%s", err, out.String())
	}
	time.Sleep(1100 * time.Millisecond) // snapshot names have one-second resolution
	return measured{Wall: wall, PeakRSS: testenv.MaxRSS(cmd.ProcessState), TempDisk: res.DBCopyBytes, Size: res.Size, CPU: testenv.CPUTime(cmd.ProcessState)}
}

// shellPipeline is what the replaced containers do: an online backup with the
// sqlite3 CLI, a tarball of the data folder with that copy, gpg -c with
// AES-256, then an upload of the file.
func shellPipeline(t *testing.T, env testenv.S3, dir, work string, run int) measured {
	t.Helper()
	stage := filepath.Join(work, fmt.Sprintf("shell-%d", run))
	if err := os.MkdirAll(stage, 0o700); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(stage)
	dbCopy := filepath.Join(stage, "db.sqlite3")
	tarball := filepath.Join(stage, "backup.tar.gz")
	sealed := tarball + ".gpg"
	var rss int64
	step := func(name string, args ...string) {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "GNUPGHOME="+stage)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		rss = max(rss, testenv.MaxRSS(cmd.ProcessState))
	}
	start := time.Now()
	step("sqlite3", filepath.Join(dir, vaultsim.DBName), ".backup '"+dbCopy+"'")
	step("tar", "czf", tarball, "-C", stage, "db.sqlite3", "-C", dir, "attachments", "sends", "config.json", "rsa_key.pem")
	step("gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", passphrase,
		"--symmetric", "--cipher-algo", "AES256", "-o", sealed, tarball)
	var temp int64
	for _, p := range []string{dbCopy, tarball, sealed} {
		if fi, err := os.Stat(p); err == nil {
			temp += fi.Size()
		}
	}
	f, err := os.Open(sealed)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	key := fmt.Sprintf("shell/backup-%d.tar.gz.gpg", run)
	if _, err := env.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(env.Bucket), Key: &key, Body: f,
		ContentLength: aws.Int64(fi.Size())}); err != nil {
		t.Fatalf("upload: %v", err)
	}
	return measured{Wall: time.Since(start), PeakRSS: rss, TempDisk: temp, Size: fi.Size()}
}
