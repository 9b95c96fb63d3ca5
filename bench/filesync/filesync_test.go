// Package filesync_test compares vwstream's file sync with Debian's rclone on
// the same S3 server and data (see README.md). It runs only when asked:
//
//	VWSTREAM_BENCH=1 scripts/test -run TestFileSyncVsRclone -v ./bench/filesync
//
// and rewrites RESULTS.md.
package filesync_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/vwstream/vwstream/internal/filesync"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/testenv"
)

const (
	firstRounds = 3 // first syncs per side
	nFiles      = 2000
	minSize     = 1 << 10
	maxSize     = 50 << 10
	nLatency    = 40
	resultFile  = "RESULTS.md"
)

// makeData writes nFiles attachments of 1-50 KB, modified a minute ago, and
// returns their total size.
func makeData(t *testing.T, dir string) int64 {
	var total int64
	r := rand.New(rand.NewPCG(1, 2))
	old := time.Now().Add(-time.Minute)
	for i := range nFiles {
		p := filepath.Join(dir, "attachments", fmt.Sprintf("cipher-%03d", i/10), fmt.Sprintf("att-%04d", i))
		data := make([]byte, minSize+r.IntN(maxSize-minSize+1))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, old, old)
		total += int64(len(data))
	}
	return total
}

type rcloneRunner struct {
	bin, src, dst string
	env           []string
}

func (r rcloneRunner) command(t *testing.T) *exec.Cmd {
	cmd := exec.CommandContext(t.Context(), r.bin, "sync", r.src, r.dst)
	cmd.Env = r.env
	return cmd
}

func (r rcloneRunner) sync(t *testing.T) time.Duration {
	cmd := r.command(t)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rclone sync: %v\n%s", err, out)
	}
	return time.Since(start)
}

func TestFileSyncVsRclone(t *testing.T) {
	if os.Getenv("VWSTREAM_BENCH") == "" {
		t.Skip("set VWSTREAM_BENCH=1 to run the file sync benchmark")
	}
	if raceEnabled {
		// A benchmark times code as it ships: the race detector slows
		// vwstream's side and the counting proxy several times over.
		rerunWithoutRace(t)
		return
	}
	rclone := testenv.Tool(t, "rclone")
	vwsync := testenv.Binaries(t, "github.com/vwstream/vwstream/bench/filesync/vwsync")[0]
	env := testenv.NewS3(t)
	proxy := testenv.NewCounter(t, env.Endpoint)
	server := serverPID(env.Endpoint)
	dir := filepath.Join(t.TempDir(), "data")
	res := results{dataBytes: makeData(t, dir), serverFound: server > 0}
	load1 := testenv.LoadAverage()

	rc := rcloneRunner{bin: rclone, src: filepath.Join(dir, "attachments"), env: append(envWithout("AWS_CA_BUNDLE"),
		"RCLONE_CONFIG=/dev/null", "RCLONE_CONFIG_X_TYPE=s3", "RCLONE_CONFIG_X_PROVIDER=Other",
		"RCLONE_CONFIG_X_ENDPOINT="+proxy.URL, "RCLONE_CONFIG_X_REGION="+env.Region,
		"RCLONE_CONFIG_X_ACCESS_KEY_ID="+env.AccessKey, "RCLONE_CONFIG_X_SECRET_ACCESS_KEY="+env.SecretKey,
		"RCLONE_CONFIG_X_FORCE_PATH_STYLE=true")}
	profiles := os.Getenv("VWSTREAM_BENCH_CPUPROFILE") // a folder: vwsync writes vwsync-<round>.pprof there

	// First sync, side by side: each round uploads the same data into fresh
	// prefixes with both tools, in alternating order, each timed from process
	// start to exit. vwstream's side is its own process (bench/filesync/vwsync)
	// built without -race, like the binary that ships.
	var vwPrefix, vwState string
	for i := range firstRounds {
		prefix, state := fmt.Sprintf("vw%d", i+1), t.TempDir()
		vw := func() {
			args := []string{"-endpoint", proxy.URL, "-region", env.Region, "-bucket", env.Bucket, "-prefix", prefix,
				"-data", dir, "-state", state, "-files", strconv.Itoa(nFiles)}
			if profiles != "" {
				args = append(args, "-cpuprofile", filepath.Join(profiles, fmt.Sprintf("vwsync-%d.pprof", i+1)))
			}
			cmd := exec.Command(vwsync, args...)
			cmd.Env = append(os.Environ(), "VWSYNC_ACCESS_KEY="+env.AccessKey, "VWSYNC_SECRET_KEY="+env.SecretKey)
			res.vwFirst = append(res.vwFirst, measureRun(t, cmd, proxy, server))
		}
		rcs := func() {
			rc.dst = "x:" + env.Bucket + fmt.Sprintf("/rc%d/attachments", i+1)
			res.rcFirst = append(res.rcFirst, measureRun(t, rc.command(t), proxy, server))
		}
		if i%2 == 0 {
			vw()
			rcs()
		} else {
			rcs()
			vw()
		}
		vwPrefix, vwState = prefix, state
	}

	// The other measures run vwstream's syncer in this process on the last
	// round's objects, from the manifest vwsync left: it must find nothing to
	// upload (every file stored, with the ETag the manifest records).
	store, err := objstore.NewS3(t.Context(), objstore.S3Options{
		Endpoint: proxy.URL, Region: env.Region, Bucket: env.Bucket, Prefix: vwPrefix,
		AccessKeyID: env.AccessKey, SecretAccessKey: env.SecretKey, ForcePathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	inc := filesync.Layout{DataDir: dir, Attachments: true}.Includes()
	proxy.Take()
	start := time.Now()
	s, err := filesync.Open(t.Context(), filesync.Options{Store: store, DataDir: dir, StateDir: vwState, Includes: inc, ReconcileInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	waitFor(t, func() bool { return s.Status().LastReconcile.After(start) })
	time.Sleep(200 * time.Millisecond)
	if st, req := s.Status(), proxy.Take(); st.FilesUploaded != 0 || st.Pending != 0 || st.Error != "" || req.Total() != 2 {
		t.Fatalf("the syncer did not take up the first sync's manifest: %+v, requests %s", st, req)
	}

	// vwstream: no-change reconcile (best of 3).
	proxy.Take()
	res.vwNoop = time.Hour
	for range 3 {
		start = time.Now()
		if err := s.Reconcile(t.Context()); err != nil {
			t.Fatal(err)
		}
		res.vwNoop = min(res.vwNoop, time.Since(start))
		res.vwNoopReq = proxy.Take()
	}

	// vwstream: one changed file.
	changed := filepath.Join(dir, "attachments", "cipher-007", "att-0070")
	before := s.Status().FilesUploaded
	if err := os.WriteFile(changed, []byte("changed content"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { st := s.Status(); return st.FilesUploaded == before+1 && st.Pending == 0 })
	time.Sleep(200 * time.Millisecond)
	res.vwOneReq = proxy.Take()

	// vwstream: write-to-durable latency, seen by a raw client on the server.
	raw := env.Client()
	for i := range nLatency {
		p := filepath.Join(dir, "attachments", "cipher-lat", fmt.Sprintf("f%03d", i))
		key := vwPrefix + "/files/attachments/cipher-lat/" + fmt.Sprintf("f%03d", i)
		os.MkdirAll(filepath.Dir(p), 0o700)
		data := make([]byte, 10<<10)
		start := time.Now()
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			_, err := raw.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &env.Bucket, Key: &key})
			return err == nil
		})
		res.latency = append(res.latency, time.Since(start))
		time.Sleep(50 * time.Millisecond)
	}
	proxy.Take()

	// rclone on the last round's objects: the same data but for the change
	// vwstream's syncer already took (the file changes again below).
	os.RemoveAll(filepath.Join(dir, "attachments", "cipher-lat"))
	rc.sync(t)
	proxy.Take()
	res.rcNoop = time.Hour
	for range 3 {
		d := rc.sync(t)
		res.rcNoop, res.rcNoopReq = min(res.rcNoop, d), proxy.Take()
	}
	if err := os.WriteFile(changed, []byte("changed again"), 0o600); err != nil {
		t.Fatal(err)
	}
	rc.sync(t)
	res.rcOneReq = proxy.Take()

	res.load = [2]string{load1, testenv.LoadAverage()}
	report := res.markdown()
	t.Log("\n" + report)
	if err := os.WriteFile(resultFile, []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
}

// run is one timed process: wall time from start to exit, the requests the
// proxy counted meanwhile, the CPU time of the process and of the S3 server.
type run struct {
	wall, cpu, serverCPU time.Duration
	req                  testenv.Counts
}

func measureRun(t *testing.T, cmd *exec.Cmd, proxy *testenv.Counter, server int) run {
	t.Helper()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	proxy.Take()
	s0 := processCPU(server)
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", filepath.Base(cmd.Path), err, out.String())
	}
	r := run{wall: time.Since(start), req: proxy.Take()}
	r.serverCPU = processCPU(server) - s0
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return r
}

type results struct {
	dataBytes                                int64
	serverFound                              bool
	load                                     [2]string
	vwFirst, rcFirst                         []run
	vwNoop, rcNoop                           time.Duration
	vwNoopReq, vwOneReq, rcNoopReq, rcOneReq testenv.Counts
	latency                                  []time.Duration
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianF(f []float64) float64 {
	s := slices.Clone(f)
	slices.Sort(s)
	return s[len(s)/2]
}

func field(runs []run, f func(run) time.Duration) []time.Duration {
	var out []time.Duration
	for _, r := range runs {
		out = append(out, f(r))
	}
	return out
}

func (r results) markdown() string {
	slices.Sort(r.latency)
	pct := func(p float64) time.Duration { return r.latency[min(len(r.latency)-1, int(p*float64(len(r.latency))))] }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
	list := func(ds []time.Duration) string {
		var parts []string
		for _, d := range ds {
			parts = append(parts, fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)))
		}
		return strings.Join(parts, ", ") + " ms"
	}
	ratio := func(a, b float64) string { return fmt.Sprintf("%.3fx", a/b) }
	wall := func(x run) time.Duration { return x.wall }
	cpu := func(x run) time.Duration { return x.cpu }
	srv := func(x run) time.Duration { return x.serverCPU }
	var roundRatios []float64
	var ratioText []string
	for i := range r.vwFirst {
		q := float64(r.vwFirst[i].wall) / float64(r.rcFirst[i].wall)
		roundRatios = append(roundRatios, q)
		ratioText = append(ratioText, fmt.Sprintf("%.3f", q))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# File sync: vwstream vs rclone\n\n")
	fmt.Fprintf(&b, "Generated by `VWSTREAM_BENCH=1 scripts/test -run TestFileSyncVsRclone -v ./bench/filesync` on %s, %d CPUs, %s; load average %s before, %s after.\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), r.load[0], r.load[1])
	fmt.Fprintf(&b, "Data: %d files of 1-50 KB under attachments/ (%d bytes); server: versitygw on loopback; requests counted by a reverse proxy in front of it.\n", nFiles, r.dataBytes)
	fmt.Fprintf(&b, "vwstream unencrypted, default options (%d uploads in flight); rclone %s with its defaults (`rclone sync`).\n", filesync.DefaultParallelism, rcloneVersion())
	fmt.Fprintf(&b, "First sync: %d rounds, each both tools into fresh prefixes in alternating order (vwstream first in odd rounds), each a process timed from start to exit; ", len(r.vwFirst))
	fmt.Fprintf(&b, "vwstream's is `bench/filesync/vwsync` (internal/filesync, built without -race like the shipped binary, until every file is stored and the manifest saved).\n\n")
	fmt.Fprintf(&b, "| measure | vwstream | rclone | vwstream / rclone | target |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| first sync time (median) | %s | %s | %.3fx (median of the rounds' ratios) | <= 1.0x |\n", ms(median(field(r.vwFirst, wall))), ms(median(field(r.rcFirst, wall))), medianF(roundRatios))
	fmt.Fprintf(&b, "| first sync time, each round | %s | %s | %s | |\n", list(field(r.vwFirst, wall)), list(field(r.rcFirst, wall)), strings.Join(ratioText, ", "))
	fmt.Fprintf(&b, "| first sync CPU of the tool (user+sys), each round | %s | %s | %s (medians) | |\n", list(field(r.vwFirst, cpu)), list(field(r.rcFirst, cpu)),
		ratio(float64(median(field(r.vwFirst, cpu))), float64(median(field(r.rcFirst, cpu)))))
	if r.serverFound {
		fmt.Fprintf(&b, "| first sync CPU of versitygw meanwhile, each round | %s | %s | %s (medians) | |\n", list(field(r.vwFirst, srv)), list(field(r.rcFirst, srv)),
			ratio(float64(median(field(r.vwFirst, srv))), float64(median(field(r.rcFirst, srv)))))
	}
	last := len(r.vwFirst) - 1
	fmt.Fprintf(&b, "| first sync requests (last round) | %s | %s | %s | <= 1.0x |\n", r.vwFirst[last].req.String(), r.rcFirst[last].req.String(),
		ratio(float64(r.vwFirst[last].req.Total()), float64(r.rcFirst[last].req.Total())))
	fmt.Fprintf(&b, "| no-change reconcile time (best of 3) | %s | %s | %s | <= 0.1x |\n", ms(r.vwNoop), ms(r.rcNoop), ratio(float64(r.vwNoop), float64(r.rcNoop)))
	fmt.Fprintf(&b, "| no-change reconcile requests | %s | %s | %s | <= 3 |\n", r.vwNoopReq.String(), r.rcNoopReq.String(), ratio(float64(r.vwNoopReq.Total()), float64(r.rcNoopReq.Total())))
	fmt.Fprintf(&b, "| one changed file, requests | %s | %s | %s | one PUT |\n", r.vwOneReq.String(), r.rcOneReq.String(), ratio(float64(r.vwOneReq.Total()), float64(r.rcOneReq.Total())))
	fmt.Fprintf(&b, "| write-to-durable p50 / p99 (%d single 10 KB files) | %s / %s | (interval-driven: up to PRIMARY_SYNC_INTERVAL, 300 s) | | p99 <= 3 s |\n", len(r.latency), ms(pct(0.5)), ms(pct(0.99)))
	fmt.Fprintf(&b, "\nNotes: the no-change, one-file and latency rows run vwstream's syncer inside the test process, on the last round's objects and the manifest vwsync left. ")
	fmt.Fprintf(&b, "vwstream's one-file figure is one PUT: objstore skips the verifying HEAD when the PutObject answer echoes the SHA-256 it was sent. ")
	fmt.Fprintf(&b, "The latency is dominated by the stability wait (StableFor, 1 s by default: a file is uploaded once unmodified for 1 s), then one PUT.\n")
	return b.String()
}

func rcloneVersion() string {
	out, err := exec.Command("rclone", "version").Output()
	if err != nil {
		return "?"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimPrefix(strings.TrimSpace(line), "rclone ")
}

func envWithout(name string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, name+"=") {
			env = append(env, kv)
		}
	}
	return env
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// serverPID finds the process listening on the endpoint's loopback port (the
// S3 test server), for its CPU time; 0 when it cannot be found.
func serverPID(endpoint string) int {
	u, err := url.Parse(endpoint)
	if err != nil {
		return 0
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return 0
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" { // LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(fs[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		if link, err := os.Readlink(fd); err == nil && inodes[link] {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			if pid != os.Getpid() {
				return pid
			}
		}
	}
	return 0
}

// processCPU is the user+system CPU time pid has used so far (0 for pid 0).
func processCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	fs := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(fs) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fs[11], 10, 64)
	stime, _ := strconv.ParseInt(fs[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// rerunWithoutRace builds this package's tests without -race and runs this
// benchmark in that binary, in this folder (it rewrites RESULTS.md here), with
// its output passed through.
func rerunWithoutRace(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "filesync.test")
	if out, err := exec.Command("go", "test", "-c", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go test -c without -race: %v\n%s", err, out)
	}
	t.Log("built with -race: running the benchmark in a build without it")
	cmd := exec.CommandContext(t.Context(), bin, "-test.run", "^TestFileSyncVsRclone$", "-test.v", "-test.timeout", "30m")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("benchmark without -race: %v", err)
	}
}
