// Package coldstart_test times a cold start to Vaultwarden-ready, empty data
// folder to a 200 on /alive, with `vwstream run` against the existing image's
// way (stock `litestream restore` then `rclone copy` of the files) on the same
// S3 server and the same vault, and the graceful stop of `vwstream run` under
// write load (see README.md). It runs only when asked:
//
//	VWSTREAM_BENCH=1 scripts/test -run TestColdStart -v ./bench/coldstart
//
// and rewrites RESULTS.md.
package coldstart_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// Knobs, with defaults that run in a few minutes. The target figure is a
// 100 MB database with 900 MB of attachments: VWSTREAM_BENCH_FILES_MB=900.
const (
	envDBMB    = "VWSTREAM_BENCH_DB_MB"    // database size to aim for, MB (default 100)
	envFilesMB = "VWSTREAM_BENCH_FILES_MB" // attachments and send files, MB (default 300)
	envRuns    = "VWSTREAM_BENCH_RUNS"     // timed runs per side; the median is reported (default 3)
	envMode    = "VWSTREAM_BENCH_DEPLOYMENT_MODE"
	envLatency = "VWSTREAM_BENCH_LATENCY"    // comma-separated added request latencies (default "0,20ms,50ms")
	envProfile = "VWSTREAM_BENCH_CPUPROFILE" // a folder: CPU profiles of vwstream's cold starts go there

	resultFile = "RESULTS.md"
	passphrase = "cold start benchmark passphrase"
	// Fixture shape: ciphers and events per MB of database (measured on vaultsim's
	// generator), attachment sizes 64 KB - 1 MB, and 30 sends (a third are files).
	ciphersPerMB = 512
	eventsPerMB  = 130
	minFile      = 64 << 10
	maxFile      = 1 << 20
	sends        = 30
)

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// withoutCABundle is the environment for litestream and rclone: both refuse to
// start with AWS_CA_BUNDLE set and an http endpoint (see DESIGN.md, known traps).
func withoutCABundle(extra ...string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "AWS_CA_BUNDLE=") })
	return append(env, extra...)
}

// bench holds what every step needs.
type bench struct {
	t          *testing.T
	s3         testenv.S3
	work       string
	vwstream   string
	vwload     string
	litestream string
	rclone     string
	mode       string
	endpoint   string // the S3 endpoint of the timed runs: the server, or a latency proxy in front of it
	keyFile    string // the bucket key itself, for the ENCRYPTION_KEY runs
	profiles   string // VWSTREAM_BENCH_CPUPROFILE: where the cold starts' CPU profiles go
	serverPID  int    // the S3 server's process, for its CPU time; 0 when not found
}

func TestColdStart(t *testing.T) {
	if os.Getenv("VWSTREAM_BENCH") == "" {
		t.Skip("set VWSTREAM_BENCH=1 to run the cold start benchmark")
	}
	dbMB, filesMB, runs := envInt(t, envDBMB, 100), envInt(t, envFilesMB, 300), envInt(t, envRuns, 3)
	b := &bench{t: t, s3: testenv.NewS3(t), work: t.TempDir(), rclone: testenv.Tool(t, "rclone"), mode: os.Getenv(envMode)}
	if b.litestream = os.Getenv("VWSTREAM_TEST_LITESTREAM"); b.litestream == "" {
		b.litestream = testenv.Tool(t, "litestream")
	}
	b.profiles = os.Getenv(envProfile)
	b.build()
	b.endpoint = b.s3.Endpoint
	b.serverPID = serverPID(b.s3.Endpoint)
	if b.serverPID == 0 {
		t.Logf("S3 server process not found: its CPU time is not reported")
	}
	loadStart := testenv.LoadAverage()

	src := filepath.Join(b.work, "src")
	start := time.Now()
	b.makeVault(src, dbMB, filesMB)
	shape := measure(t, src)
	t.Logf("vault: %s (generated in %s)", shape, time.Since(start).Round(time.Millisecond))
	// Each side replicates its own copy: both engines keep state next to the database.
	anchorSrc := filepath.Join(b.work, "anchor-src")
	if out, err := exec.Command("cp", "-a", src, anchorSrc).CombinedOutput(); err != nil {
		t.Fatalf("copy vault: %v\n%s", err, out)
	}
	start = time.Now()
	b.populateVWStream(src)
	popVW := time.Since(start)
	b.keyFile = b.bucketKeyFile()
	start = time.Now()
	b.populateAnchor(anchorSrc)
	popAnchor := time.Since(start)
	t.Logf("populated: vwstream %s, litestream + rclone %s", popVW.Round(time.Millisecond), popAnchor.Round(time.Millisecond))

	var (
		all  []results
		last string
	)
	for _, latency := range latencies(t) {
		b.endpoint = b.s3.Endpoint
		if latency > 0 {
			b.endpoint = latencyProxy(t, b.s3.Endpoint, latency)
		}
		r := results{latency: latency}
		for i := range runs {
			name := fmt.Sprintf("%s-%d", latency, i)
			// Each side starts with nothing left to write back: another side's
			// 400 MB of dirty pages would otherwise slow whoever comes next.
			sides := []func(){
				func() {
					syscall.Sync()
					took, c := b.coldVWStream("vw-"+name, shape, false)
					r.vw, r.cpuVW = append(r.vw, took), append(r.cpuVW, c)
				},
				func() {
					syscall.Sync()
					took, c := b.coldVWStream("vwkey-"+name, shape, true)
					r.vwKey, r.cpuVWKey = append(r.vwKey, took), append(r.cpuVWKey, c)
				},
				func() {
					syscall.Sync()
					took, c := b.coldAnchor(anchorSrc, "tars-"+name, "litestream + rclone tars", shape, b.filesByTar)
					r.tars, r.cpuTars = append(r.tars, took), append(r.cpuTars, c)
				},
				func() {
					syscall.Sync()
					took, c := b.coldAnchor(anchorSrc, "files-"+name, "litestream + rclone files", shape, b.filesOneByOne)
					r.files, r.cpuFiles = append(r.files, took), append(r.cpuFiles, c)
				},
			}
			// Rotate the order so no side always meets a warmer server.
			for k := range sides {
				sides[(i+k)%len(sides)]()
			}
			t.Logf("latency %s, run %d: vwstream %s, with ENCRYPTION_KEY %s, litestream + rclone tars %s, litestream + rclone files %s", latency, i+1,
				r.vw[i].Round(time.Millisecond), r.vwKey[i].Round(time.Millisecond), r.tars[i].Round(time.Millisecond), r.files[i].Round(time.Millisecond))
		}
		all = append(all, r)
		last = filepath.Join(b.work, fmt.Sprintf("vw-%s-%d", latency, runs-1), "data")
	}
	// Every start as primary moves the replica on: only the newest folder is current.
	b.endpoint = b.s3.Endpoint
	stops := b.gracefulStops(last, runs)

	rep := report{shape: shape, runs: runs, all: all, stops: stops, popVW: popVW, popAnchor: popAnchor,
		mode: b.mode, dbMB: dbMB, filesMB: filesMB, loadStart: loadStart, loadEnd: testenv.LoadAverage(), race: raceEnabled}
	rep.write(t, b)
	// Timings are reported, never a test failure (they depend on the machine).
	for _, r := range all {
		if ratio := r.ratio(); ratio > targetPassphrase {
			t.Logf("cold start ratio %.2f with the passphrase, %s added latency: target <= %.2f NOT met", ratio, r.latency, targetPassphrase)
		}
		if ratio := r.ratioKey(); ratio > targetKey {
			t.Logf("cold start ratio %.2f with ENCRYPTION_KEY, %s added latency: target <= %.2f NOT met", ratio, r.latency, targetKey)
		}
	}
}

// latencies parses VWSTREAM_BENCH_LATENCY.
func latencies(t *testing.T) []time.Duration {
	v := os.Getenv(envLatency)
	if v == "" {
		v = "0,20ms,50ms"
	}
	var out []time.Duration
	for _, f := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d < 0 {
			t.Fatalf("%s=%q: want durations like 0,20ms", envLatency, v)
		}
		out = append(out, d)
	}
	return out
}

// latencyProxy is a reverse proxy in front of the server that holds every
// request for latency before forwarding it: a remote object store's round
// trip, which loopback lacks. Both sides of the benchmark go through it.
func latencyProxy(t *testing.T, endpoint string, latency time.Duration) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // clients hanging up on stop are not news
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(latency)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// build compiles vwstream and vwload without -race: the benchmark times them.
// With VWSTREAM_BENCH_CPUPROFILE, vwstream is built with the vwstreambench tag,
// whose hook (cmd/vwstream/cpuprofile_bench.go) writes a CPU profile.
func (b *bench) build() {
	bins := testenv.Binaries(b.t, "github.com/vwstream/vwstream/cmd/vwstream", "github.com/vwstream/vwstream/cmd/vwload")
	b.vwstream, b.vwload = bins[0], bins[1]
	if b.profiles == "" {
		return
	}
	if err := os.MkdirAll(b.profiles, 0o750); err != nil {
		b.t.Fatal(err)
	}
	b.vwstream = filepath.Join(b.profiles, "vwstream")
	if out, err := exec.Command("go", "build", "-tags", "vwstreambench", "-o", b.vwstream, "github.com/vwstream/vwstream/cmd/vwstream").CombinedOutput(); err != nil {
		b.t.Fatalf("build vwstream with the profile hook: %v\n%s", err, out)
	}
}

// makeVault generates a Vaultwarden-shaped folder of about dbMB database and
// filesMB attachment and send files.
func (b *bench) makeVault(dir string, dbMB, filesMB int) {
	avg := (minFile + maxFile) / 2
	files := max(filesMB<<20/avg-sends/3, 1)
	v, err := vaultsim.Create(dir, vaultsim.Options{Seed: 1, Size: vaultsim.SizeLarge,
		Ciphers: ciphersPerMB * dbMB, Events: eventsPerMB * dbMB, Attachments: files, Sends: sends,
		AttachmentMinSize: minFile, AttachmentMaxSize: maxFile})
	if err != nil {
		b.t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		b.t.Fatal(err)
	}
}

// shape is what a data folder holds, for the report and to check restores.
type shape struct {
	dbBytes, fileBytes int64
	files              int
}

func (s shape) String() string {
	return fmt.Sprintf("database %.1f MB, %d files of %.1f MB (attachments, sends, config.json, rsa_key.pem)",
		mb(s.dbBytes), s.files, mb(s.fileBytes))
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

// measure sizes the database and the files a restore must bring back.
func measure(t *testing.T, dir string) shape {
	t.Helper()
	var s shape
	fi, err := os.Stat(filepath.Join(dir, "db.sqlite3"))
	if err != nil {
		t.Fatal(err)
	}
	s.dbBytes = fi.Size()
	for _, sub := range []string{"attachments", "sends", "config.json", "rsa_key.pem"} {
		err := filepath.WalkDir(filepath.Join(dir, sub), func(_ string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			s.files++
			s.fileBytes += info.Size()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// vwEnv is the environment of a vwstream process on the data folder dir.
func (b *bench) vwEnv(dir, statusAddr string, extra ...string) []string {
	env := append(os.Environ(),
		"DATA_FOLDER="+dir,
		"S3_BUCKET="+b.s3.Bucket, "S3_ENDPOINT="+b.endpoint, "S3_REGION="+b.s3.Region,
		"S3_ACCESS_KEY_ID="+b.s3.AccessKey, "S3_SECRET_ACCESS_KEY="+b.s3.SecretKey,
		"S3_PREFIX=vwstream", "ENCRYPTION_PASSPHRASE="+passphrase,
		"STATUS_ADDR="+statusAddr, "STATUS_FILE="+filepath.Join(filepath.Dir(dir), "status.json"),
		"SYNC_SHUTDOWN_TIMEOUT=300s", "LITESTREAM_SHUTDOWN_TIMEOUT=120s",
	)
	if b.mode != "" {
		env = append(env, "DEPLOYMENT_MODE="+b.mode)
	}
	return append(env, extra...)
}

// populateVWStream runs vwstream as a sidecar primary on dir until the database
// and every file are in S3, then stops it (which flushes once more).
func (b *bench) populateVWStream(dir string) {
	addr := testenv.FreeAddr(b.t)
	p := start(b.t, "vwstream run (populate)", b.vwEnv(dir, addr), b.vwstream, "run")
	deadline := time.Now().Add(30 * time.Minute)
	for {
		if p.exited() {
			b.t.Fatalf("vwstream run exited while populating:\n%s", p.out.String())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		doc, err := status.Fetch(ctx, addr)
		cancel()
		if err == nil && doc.DB != nil && doc.Files != nil && doc.DB.TXIDReplicated > 0 && doc.DB.LagSeconds == 0 &&
			!doc.Files.LastSync.IsZero() && doc.Files.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("vwstream did not replicate the vault within 30 min (last: %+v, %v)", doc, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.stop(b.t, 10*time.Minute)
}

// litestreamConfig writes the stock litestream configuration replicating the
// database of dir to anchor/db in the bucket.
func (b *bench) litestreamConfig(dir string) string {
	cfg := fmt.Sprintf(`dbs:
  - path: %s
    replicas:
      - type: s3
        bucket: %s
        path: anchor/db
        endpoint: %s
        region: %s
        force-path-style: true
        access-key-id: %s
        secret-access-key: %s
`, filepath.Join(dir, "db.sqlite3"), b.s3.Bucket, b.endpoint, b.s3.Region, b.s3.AccessKey, b.s3.SecretKey)
	path := filepath.Join(b.work, "litestream.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		b.t.Fatal(err)
	}
	return path
}

// rcloneEnv configures the remote "bench" on the test server, rclone's defaults otherwise.
func (b *bench) rcloneEnv() []string {
	return withoutCABundle("RCLONE_CONFIG_BENCH_TYPE=s3", "RCLONE_CONFIG_BENCH_PROVIDER=Other",
		"RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="+b.s3.AccessKey, "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="+b.s3.SecretKey,
		"RCLONE_CONFIG_BENCH_ENDPOINT="+b.endpoint, "RCLONE_CONFIG_BENCH_REGION="+b.s3.Region)
}

func (b *bench) filesRemote() string { return "bench:" + b.s3.Bucket + "/anchor/files" }

// tarsRemote holds the files as the existing image keeps them: a tar archive.
func (b *bench) tarsRemote() string { return "bench:" + b.s3.Bucket + "/anchor/tars" }

// anchorTar is the archive's name: one plain tar of attachments, sends,
// config.json and rsa_key.pem. Uncompressed (attachments are ciphertext, and
// gzip would only slow the extraction) and one object (rclone fetches it with
// its multi-thread download): the anchor's most favourable shape.
const anchorTar = "vaultwarden-files.tar"

// populateAnchor replicates dir's database with `litestream replicate` until its
// snapshot is stored, and copies the files with `rclone copy`, as the existing
// image does.
func (b *bench) populateAnchor(dir string) {
	cfg := b.litestreamConfig(dir)
	p := start(b.t, "litestream replicate", withoutCABundle(), b.litestream, "replicate", "-config", cfg)
	deadline := time.Now().Add(10 * time.Minute)
	for !strings.Contains(p.out.String(), "snapshot complete") {
		if p.exited() || time.Now().After(deadline) {
			b.t.Fatalf("litestream replicate did not store a snapshot:\n%s", p.out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.stop(b.t, 2*time.Minute)
	run(b.t, b.rcloneEnv(), b.rclone, "copy", dir, b.filesRemote(),
		"--include", "/attachments/**", "--include", "/sends/**", "--include", "/config.json", "--include", "/rsa_key*")
	tars := filepath.Join(b.work, "anchor-tars")
	if err := os.MkdirAll(tars, 0o750); err != nil {
		b.t.Fatal(err)
	}
	run(b.t, os.Environ(), "tar", "-cf", filepath.Join(tars, anchorTar), "-C", dir, "attachments", "sends", "config.json", "rsa_key.pem")
	run(b.t, b.rcloneEnv(), b.rclone, "copy", tars, b.tarsRemote())
}

// bucketKeyFile takes the bucket key out of keys/age-identity.age with the
// passphrase, as the README tells a user to (age -d), for ENCRYPTION_KEY_FILE.
func (b *bench) bucketKeyFile() string {
	out, err := b.s3.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: &b.s3.Bucket, Key: aws.String("vwstream/keys/age-identity.age")})
	if err != nil {
		b.t.Fatal(err)
	}
	defer out.Body.Close()
	id, err := age.NewScryptIdentity(passphrase)
	if err != nil {
		b.t.Fatal(err)
	}
	r, err := age.Decrypt(out.Body, id)
	if err != nil {
		b.t.Fatal(err)
	}
	identity, err := io.ReadAll(r)
	if err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(b.work, "bucket-key.txt")
	if err := os.WriteFile(path, identity, 0o600); err != nil {
		b.t.Fatal(err)
	}
	return path
}

// coldVWStream times an empty data folder to /alive under `vwstream run`,
// with the passphrase or, keyed, with the bucket key itself.
func (b *bench) coldVWStream(name string, want shape, keyed bool) (time.Duration, cpu) {
	dir := filepath.Join(b.work, name, "data")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		b.t.Fatal(err)
	}
	env := b.vwEnv(dir, "off")
	if keyed { // first occurrence wins
		env = append([]string{"ENCRYPTION_PASSPHRASE=", "ENCRYPTION_KEY_FILE=" + b.keyFile}, env...)
	}
	if b.profiles != "" {
		env = append(env, "VWSTREAM_BENCH_CPUPROFILE="+filepath.Join(b.profiles, name+".pprof"))
	}
	alive := testenv.FreeAddr(b.t)
	m := b.meter()
	began := time.Now()
	p := start(b.t, "vwstream run (cold)", env,
		b.vwstream, "run", "--", b.vwload, "serve", "--dir", dir, "--addr", alive, "--write-rate", "0")
	waitAlive(b.t, p, alive)
	took := time.Since(began)
	c := m.end()
	p.stop(b.t, 2*time.Minute)
	c.client = testenv.CPUTime(p.cmd.ProcessState) // vwstream and the stand-in it started, until both exited
	if os.Getenv("VWSTREAM_BENCH_LOG") != "" {
		b.t.Logf("vwstream cold start began %s:\n%s", began.UTC().Format("15:04:05.000"), p.out.String())
	}
	checkRestored(b.t, "vwstream", dir, want)
	return took, c
}

// coldAnchor times an empty data folder to /alive the way of a stack built
// from the stock tools: litestream restore, then the files step, then the
// server. who names the anchor in the process list and in failures.
func (b *bench) coldAnchor(src, name, who string, want shape, files func(dir, scratch string) time.Duration) (time.Duration, cpu) {
	dir := filepath.Join(b.work, name, "data")
	scratch := filepath.Join(b.work, name, "scratch")
	cfg := b.litestreamConfig(src)
	alive := testenv.FreeAddr(b.t)
	m := b.meter()
	began := time.Now()
	used := run(b.t, withoutCABundle(), b.litestream, "restore", "-config", cfg, "-o", filepath.Join(dir, "db.sqlite3"), filepath.Join(src, "db.sqlite3"))
	used += files(dir, scratch)
	p := start(b.t, "vwload serve ("+who+")", os.Environ(), b.vwload, "serve", "--dir", dir, "--addr", alive, "--write-rate", "0")
	waitAlive(b.t, p, alive)
	took := time.Since(began)
	c := m.end()
	p.stop(b.t, time.Minute)
	c.client = used + testenv.CPUTime(p.cmd.ProcessState)
	checkRestored(b.t, who, dir, want)
	return took, c
}

// filesByTar is the tar anchor, the existing image's way: rclone copies
// the tar, tar extracts it.
func (b *bench) filesByTar(dir, scratch string) time.Duration {
	used := run(b.t, b.rcloneEnv(), b.rclone, "copy", b.tarsRemote(), scratch)
	return used + run(b.t, os.Environ(), "tar", "-xf", filepath.Join(scratch, anchorTar), "-C", dir)
}

// filesOneByOne is a stack that syncs files with rclone: rclone copies them.
func (b *bench) filesOneByOne(dir, _ string) time.Duration {
	return run(b.t, b.rcloneEnv(), b.rclone, "copy", b.filesRemote(), dir)
}

// checkRestored fails when a cold start brought back less than the source held.
func checkRestored(t *testing.T, who, dir string, want shape) {
	t.Helper()
	got := measure(t, dir)
	if got.files != want.files || got.fileBytes != want.fileBytes {
		t.Fatalf("%s restored %s, want %s", who, got, want)
	}
}

// gracefulStops starts `vwstream run` on dir with the stand-in writing 100 tx/s
// (5%% of them attachment uploads), lets it run 10 s, and times SIGTERM to exit.
func (b *bench) gracefulStops(dir string, runs int) []time.Duration {
	var out []time.Duration
	for range runs {
		addr, alive := testenv.FreeAddr(b.t), testenv.FreeAddr(b.t)
		p := start(b.t, "vwstream run (write load)", b.vwEnv(dir, addr),
			b.vwstream, "run", "--", b.vwload, "serve", "--dir", dir, "--addr", alive, "--write-rate", "100")
		waitAlive(b.t, p, alive)
		time.Sleep(10 * time.Second)
		began := time.Now()
		if code := p.stop(b.t, 5*time.Minute); code != 0 {
			b.t.Fatalf("vwstream run exited with %d after SIGTERM:\n%s", code, p.out.String())
		}
		out = append(out, time.Since(began))
	}
	return out
}

// proc is a background process whose combined output is kept.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *testenv.SyncBuffer
	done chan struct{}
}

func start(t *testing.T, name string, env []string, argv ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(argv[0], argv[1:]...), out: &testenv.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
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

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop(t *testing.T, timeout time.Duration) int {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s did not stop within %s:\n%s", p.name, timeout, p.out.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// run runs a command to completion, failing the test on error, and returns
// the CPU time (user + system) it used.
func run(t *testing.T, env []string, argv ...string) time.Duration {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return testenv.CPUTime(cmd.ProcessState)
}

// waitAlive polls /alive every 10 ms until it answers 200.
func waitAlive(t *testing.T, p *proc, addr string) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Minute)
	for time.Now().Before(deadline) {
		if p.exited() {
			t.Fatalf("%s exited before /alive answered:\n%s", p.name, p.out.String())
		}
		if resp, err := client.Get("http://" + addr + "/alive"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: /alive did not answer within 30 min", p.name)
}

// results are the cold starts measured with one added latency.
type results struct {
	latency time.Duration
	vw      []time.Duration
	vwKey   []time.Duration // vwstream with ENCRYPTION_KEY instead of the passphrase
	tars    []time.Duration // the tar anchor: litestream restore, rclone copy of the tar, tar -x
	files   []time.Duration // litestream restore, rclone copy of the files one by one

	cpuVW, cpuVWKey, cpuTars, cpuFiles []cpu // CPU of each run, in the same order
}

// report is what RESULTS.md says.
type report struct {
	shape            shape
	runs             int
	dbMB, filesMB    int
	mode             string
	all              []results
	stops            []time.Duration
	popVW, popAnchor time.Duration
	loadStart        string // load averages at the start and the end
	loadEnd          string
	race             bool // this process (the proxy) runs under the race detector
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// ratio is vwstream's median over the anchor's (the tars, the target).
func (r results) ratio() float64 { return float64(median(r.vw)) / float64(median(r.tars)) }

func (r results) ratioFiles() float64 { return float64(median(r.vw)) / float64(median(r.files)) }

func (r results) ratioKey() float64 { return float64(median(r.vwKey)) / float64(median(r.tars)) }

// targetKey is the target of the ENCRYPTION_KEY runs; the passphrase's scrypt
// unwrap (a second of one core) is allowed on top, up to targetPassphrase.
const (
	targetKey        = 0.5
	targetPassphrase = 0.6
)

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

func list(d []time.Duration) string {
	var parts []string
	for _, x := range d {
		parts = append(parts, strconv.FormatInt(x.Milliseconds(), 10))
	}
	return strings.Join(parts, ", ") + " ms"
}

func (r report) write(t *testing.T, b *bench) {
	mode := r.mode
	if mode == "" {
		mode = "persistent"
	}
	var w strings.Builder
	fmt.Fprintf(&w, "# Cold start: vwstream vs litestream + rclone\n\n")
	fmt.Fprintf(&w, "Generated by `VWSTREAM_BENCH=1 %s=%d %s=%d scripts/test -race=false -run TestColdStart -v ./bench/coldstart` on %s, %d CPUs, %s.\n",
		envDBMB, r.dbMB, envFilesMB, r.filesMB, time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(&w, "Vault: %s. Server: versitygw on loopback, one bucket, each side under its own prefix; ", r.shape)
	fmt.Fprintf(&w, "\"added latency\" puts a proxy in front of it that holds every request that long (a remote store's round trip).\n")
	fmt.Fprintf(&w, "vwstream: DEPLOYMENT_MODE=%s, encrypted (ENCRYPTION_PASSPHRASE, default scrypt cost for the bucket key), defaults otherwise.\n", mode)
	fmt.Fprintf(&w, "Anchors: %s, then %s with their defaults, one after the other, unencrypted; ", version(b.litestream, "version"), version(b.rclone, "version"))
	fmt.Fprintf(&w, "**tars** (the tar anchor, the existing image's way): rclone copies one plain tar of the files (%s), then `tar -xf`; ", anchorTar)
	fmt.Fprintf(&w, "**files**: rclone copies the files one by one (a stack that syncs files with rclone).\n")
	fmt.Fprintf(&w, "Cold start = empty data folder to the first 200 from the stand-in's /alive (vwload serve, which opens the database like Vaultwarden). ")
	fmt.Fprintf(&w, "Dirty pages are flushed (sync) before each timed start; the order of the three sides rotates between runs.\n\n")
	fmt.Fprintf(&w, "\"vwstream, key\" is the same with ENCRYPTION_KEY_FILE (the bucket key itself) instead of the passphrase: no scrypt unwrap; its ratio is against the tars too.\n\n")
	fmt.Fprintf(&w, "| measure | vwstream | anchor: tars | ratio | target | vwstream, key | ratio | anchor: files | vwstream / files |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, x := range r.all {
		fmt.Fprintf(&w, "| cold start, %s added latency, median of %d | %s | %s | %.2f | <= %.2f (key: <= %.2f) | %s | %.2f | %s | %.2f |\n",
			x.latency, r.runs, ms(median(x.vw)), ms(median(x.tars)), x.ratio(), targetPassphrase, targetKey, ms(median(x.vwKey)), x.ratioKey(), ms(median(x.files)), x.ratioFiles())
		fmt.Fprintf(&w, "| (each run) | %s | %s | | | %s | | %s | |\n", list(x.vw), list(x.tars), list(x.vwKey), list(x.files))
	}
	fmt.Fprintf(&w, "| first upload of the vault (polled, approximate; the anchors: litestream, rclone, the tar made and copied) | %s | | | | | | %s | |\n", ms(r.popVW), ms(r.popAnchor))
	fmt.Fprintf(&w, "| graceful stop under write load (100 tx/s, SIGTERM to exit), each run | %s | | | within the shutdown budget | | | | |\n\n", list(r.stops))
	fmt.Fprintf(&w, "CPU time of each cold start (user + system), median of %d: the side's own processes / the S3 server / this test process (the latency proxy and the /alive polling). ", r.runs)
	fmt.Fprintf(&w, "The machine has %d CPUs; a cold start whose CPU seconds over its wall seconds come near that is CPU-bound.\n\n", runtime.NumCPU())
	fmt.Fprintf(&w, "| added latency | vwstream | vwstream, key | anchor: tars | anchor: files |\n|---|---|---|---|---|\n")
	for _, x := range r.all {
		fmt.Fprintf(&w, "| %s, median | %s | %s | %s | %s |\n", x.latency, medianCPU(x.cpuVW), medianCPU(x.cpuVWKey), medianCPU(x.cpuTars), medianCPU(x.cpuFiles))
		fmt.Fprintf(&w, "| (each run, s) | %s | %s | %s | %s |\n", cpuList(x.cpuVW), cpuList(x.cpuVWKey), cpuList(x.cpuTars), cpuList(x.cpuFiles))
	}
	race := "off"
	if r.race {
		race = "on (the proxy's CPU inflated)"
	}
	fmt.Fprintf(&w, "\nLoad average (1, 5, 15 min): %s at the start, %s at the end; race detector in the test process: %s.\n", r.loadStart, r.loadEnd, race)
	if err := os.WriteFile(resultFile, []byte(w.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", w.String())
}

// version is the first line a tool prints for its version command.
func version(bin, arg string) string {
	out, err := exec.Command(bin, arg).Output()
	if err != nil {
		return filepath.Base(bin)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if !strings.Contains(line, filepath.Base(bin)) {
		line = filepath.Base(bin) + " " + line
	}
	return "`" + line + "`"
}
