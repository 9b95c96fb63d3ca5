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
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/vwstream/vwstream/internal/filesync"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/testenv"
)

const (
	nFiles     = 2000
	minSize    = 1 << 10
	maxSize    = 50 << 10
	nLatency   = 40
	resultFile = "RESULTS.md"
)

// makeData writes nFiles attachments of 1-50 KB, modified a minute ago.
func makeData(t *testing.T, dir string) {
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
	}
}

type rcloneRunner struct {
	bin, src, dst string
	env           []string
}

func (r rcloneRunner) sync(t *testing.T) time.Duration {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.bin, "sync", r.src, r.dst)
	cmd.Env = r.env
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
	rclone := testenv.Tool(t, "rclone")
	env := testenv.NewS3(t)
	proxy := testenv.NewCounter(t, env.Endpoint)
	dir := filepath.Join(t.TempDir(), "data")
	makeData(t, dir)

	store, err := objstore.NewS3(t.Context(), objstore.S3Options{
		Endpoint: proxy.URL, Region: env.Region, Bucket: env.Bucket, Prefix: "vw",
		AccessKeyID: env.AccessKey, SecretAccessKey: env.SecretKey, ForcePathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	inc := filesync.Layout{DataDir: dir, Attachments: true}.Includes()
	var res results

	// vwstream: first sync.
	proxy.Take()
	start := time.Now()
	s, err := filesync.Open(t.Context(), filesync.Options{Store: store, DataDir: dir, Includes: inc, ReconcileInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	waitFor(t, func() bool {
		st := s.Status()
		return st.LastReconcile.After(start) && st.Pending == 0 && st.FilesUploaded == nFiles
	})
	res.vwFirst, res.vwFirstReq = time.Since(start), proxy.Take()

	// vwstream: no-change reconcile (best of 3).
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
		key := "vw/files/attachments/cipher-lat/" + fmt.Sprintf("f%03d", i)
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

	// rclone on the same server, data and proxy, under another prefix.
	os.RemoveAll(filepath.Join(dir, "attachments", "cipher-lat"))
	rc := rcloneRunner{bin: rclone, src: filepath.Join(dir, "attachments"), dst: "x:" + env.Bucket + "/rc/attachments", env: append(envWithout("AWS_CA_BUNDLE"),
		"RCLONE_CONFIG=/dev/null", "RCLONE_CONFIG_X_TYPE=s3", "RCLONE_CONFIG_X_PROVIDER=Other",
		"RCLONE_CONFIG_X_ENDPOINT="+proxy.URL, "RCLONE_CONFIG_X_REGION="+env.Region,
		"RCLONE_CONFIG_X_ACCESS_KEY_ID="+env.AccessKey, "RCLONE_CONFIG_X_SECRET_ACCESS_KEY="+env.SecretKey,
		"RCLONE_CONFIG_X_FORCE_PATH_STYLE=true")}
	res.rcFirst, res.rcFirstReq = rc.sync(t), proxy.Take()
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

	report := res.markdown()
	t.Log("\n" + report)
	if err := os.WriteFile(resultFile, []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
}

type results struct {
	vwFirst, vwNoop, rcFirst, rcNoop                                 time.Duration
	vwFirstReq, vwNoopReq, vwOneReq, rcFirstReq, rcNoopReq, rcOneReq testenv.Counts
	latency                                                          []time.Duration
}

func (r results) markdown() string {
	slices.Sort(r.latency)
	pct := func(p float64) time.Duration { return r.latency[min(len(r.latency)-1, int(p*float64(len(r.latency))))] }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
	ratio := func(a, b float64) string { return fmt.Sprintf("%.3fx", a/b) }
	var b strings.Builder
	fmt.Fprintf(&b, "# File sync: vwstream vs rclone\n\n")
	fmt.Fprintf(&b, "Generated by `VWSTREAM_BENCH=1 scripts/test -run TestFileSyncVsRclone -v ./bench/filesync` on %s, %d CPUs, %s.\n", time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(&b, "Data: %d files of 1-50 KB under attachments/; server: versitygw on loopback; requests counted by a reverse proxy in front of it.\n", nFiles)
	fmt.Fprintf(&b, "vwstream unencrypted, default options (8 uploads in flight); rclone %s with its defaults (`rclone sync`).\n\n", rcloneVersion())
	fmt.Fprintf(&b, "| measure | vwstream | rclone | vwstream / rclone | target |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| first sync time | %s | %s | %s | |\n", ms(r.vwFirst), ms(r.rcFirst), ratio(float64(r.vwFirst), float64(r.rcFirst)))
	fmt.Fprintf(&b, "| first sync requests | %s | %s | %s | |\n", r.vwFirstReq.String(), r.rcFirstReq.String(), ratio(float64(r.vwFirstReq.Total()), float64(r.rcFirstReq.Total())))
	fmt.Fprintf(&b, "| no-change reconcile time (best of 3) | %s | %s | %s | <= 0.1x |\n", ms(r.vwNoop), ms(r.rcNoop), ratio(float64(r.vwNoop), float64(r.rcNoop)))
	fmt.Fprintf(&b, "| no-change reconcile requests | %s | %s | %s | <= 3 |\n", r.vwNoopReq.String(), r.rcNoopReq.String(), ratio(float64(r.vwNoopReq.Total()), float64(r.rcNoopReq.Total())))
	fmt.Fprintf(&b, "| one changed file, requests | %s | %s | %s | one PUT |\n", r.vwOneReq.String(), r.rcOneReq.String(), ratio(float64(r.vwOneReq.Total()), float64(r.rcOneReq.Total())))
	fmt.Fprintf(&b, "| write-to-durable p50 / p99 (%d single 10 KB files) | %s / %s | (interval-driven: up to PRIMARY_SYNC_INTERVAL, 300 s) | | p99 <= 3 s |\n", len(r.latency), ms(pct(0.5)), ms(pct(0.99)))
	fmt.Fprintf(&b, "\nNotes: vwstream's one-file figure is one PUT plus the HEAD objstore makes to verify the stored checksum. ")
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
