package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/lease"
	"github.com/vwstream/vwstream/internal/node"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// TestRun_SecondPrimaryRefused: with a primary running on a prefix, a second
// primary on the same prefix refuses to start, exits 1 and names the holder and
// the lease's expiry; the lease stays the first node's.
func TestRun_SecondPrimaryRefused(t *testing.T) {
	vwstream, _ := binaries(t)
	s := testenv.NewS3(t)
	work := t.TempDir()
	first := filepath.Join(work, "first", "data")
	createVault(t, first, 21)
	cfg := s3Config(t, s, first, quietStatus(t)...)
	ctx, cancel := context.WithCancel(context.Background())
	n := node.New(node.Options{Config: cfg, Env: os.Environ(), Logger: testLogger(t)})
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	waitReady(t, n, done)
	holder := n.Status().Lease
	if holder == nil || !holder.Ours {
		t.Fatalf("first primary's lease = %+v, want ours", holder)
	}

	// In process: the error is a HeldError.
	second := filepath.Join(work, "second", "data")
	cfg2 := *cfg
	cfg2.DataFolder, cfg2.DBPath = second, filepath.Join(second, "db.sqlite3")
	err := node.Run(context.Background(), node.Options{Config: &cfg2, Env: os.Environ(), Logger: testLogger(t)})
	var held *lease.HeldError
	if !errors.As(err, &held) || held.Info.Holder.String() != holder.Holder {
		t.Fatalf("second primary in process: %v, want a HeldError naming %s", err, holder.Holder)
	}

	// Through the binary: exit code 1 and one line with holder and expiry.
	code, out := command(t, runEnv(s, second), vwstream, "run", "--", "true")
	if code != 1 {
		t.Fatalf("second primary: exit %d, want 1; output:\n%s", code, out)
	}
	line := out[strings.LastIndex(strings.TrimRight(out, "\n"), "\n")+1:]
	if !strings.HasPrefix(line, "vwstream run: ") || !strings.Contains(line, "lease held by "+holder.Holder+" until ") {
		t.Fatalf("second primary's message %q does not name the holder %s", line, holder.Holder)
	}
	until := strings.Fields(line[strings.Index(line, " until ")+len(" until "):])[0]
	if exp, err := time.Parse(time.RFC3339, strings.TrimSuffix(until, ";")); err != nil || exp.Before(time.Now().Add(-time.Second)) {
		t.Fatalf("second primary's message %q: expiry %q is not a future RFC 3339 time (%v)", line, until, err)
	}
	if got := leaseHolder(t, s, cfg); got != holder.Holder || !n.Status().Lease.Ours {
		t.Fatalf("after the refusals the lease is held by %s, want %s", got, holder.Holder)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("first primary: %v", err)
	}
}

// quietStatus keeps an in-process node off the default STATUS_ADDR and
// STATUS_FILE, which other tests and a real node on this host may use.
func quietStatus(t *testing.T) []string {
	return []string{"STATUS_ADDR=off", "STATUS_FILE=" + filepath.Join(t.TempDir(), "status.json")}
}

// leaseHolder reads who holds the lease, behind the node's back.
func leaseHolder(t *testing.T, s testenv.S3, cfg *config.Config) string {
	t.Helper()
	out, err := s.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: &s.Bucket, Key: leaseKey(cfg)})
	if err != nil {
		t.Fatalf("get lease: %v", err)
	}
	defer out.Body.Close()
	var info lease.Info
	if err := json.NewDecoder(out.Body).Decode(&info); err != nil {
		t.Fatalf("decode lease: %v", err)
	}
	return info.Holder.String()
}

func leaseKey(cfg *config.Config) *string {
	k := layout.Lease
	if cfg.S3.Prefix != "" {
		k = cfg.S3.Prefix + "/" + k
	}
	return &k
}

// writeLog is a reverse proxy in front of the S3 server that records when each
// write request (PUT, POST, DELETE) arrived and what it wrote.
type writeLog struct {
	URL    string
	mu     sync.Mutex
	writes []write
}

type write struct {
	at   time.Time
	op   string
	path string
}

func newWriteLog(t *testing.T, endpoint string) *writeLog {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	w := &writeLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.mu.Lock()
			w.writes = append(w.writes, write{at: time.Now(), op: r.Method, path: r.URL.Path})
			w.mu.Unlock()
		}
		rp.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	w.URL = srv.URL
	return w
}

// after lists the writes under db/ or files/ that arrived after t.
func (w *writeLog) after(t time.Time) []write {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []write
	for _, x := range w.writes {
		if x.at.After(t) && (strings.Contains(x.path, "/db/") || strings.Contains(x.path, "/files/")) {
			out = append(out, x)
		}
	}
	return out
}

// TestNode_StolenLeaseFences: a primary whose lease object is overwritten behind
// its back (another node took over) stops writing db/ and files/ within one
// renew interval, even while its child takes seconds to stop and the database
// keeps changing; Run returns ErrFenced, and nothing is written afterwards.
func TestNode_StolenLeaseFences(t *testing.T) {
	const renew = time.Second
	s := testenv.NewS3(t)
	proxy := newWriteLog(t, s.Endpoint)
	viaProxy := s
	viaProxy.Endpoint = proxy.URL
	data := filepath.Join(t.TempDir(), "data")
	createVault(t, data, 22)
	cfg := s3Config(t, viaProxy, data, append(quietStatus(t), "LEASE_TTL=3s", "LEASE_RENEW_INTERVAL="+renew.String())...)

	// The application keeps committing and uploading attachments during and
	// after the takeover, and stops slowly, like a server finishing requests.
	v, err := vaultsim.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	wctx, stopWrites := context.WithCancel(context.Background())
	defer stopWrites()
	wdone := make(chan error, 1)
	go func() {
		_, err := vaultsim.NewWorkload(v, vaultsim.WorkloadOptions{Rate: 100, AttachmentRatio: 0.2, ChunkDelay: time.Microsecond}).Run(wctx)
		wdone <- err
	}()
	n := node.New(node.Options{
		Config:  cfg,
		Command: []string{"sh", "-c", `trap 'sleep 3; exit 0' TERM; while :; do sleep 0.1; done`},
		Env:     os.Environ(), Stdout: testWriter{t}, Stderr: testWriter{t}, Logger: testLogger(t),
	})
	done := make(chan error, 1)
	go func() { done <- n.Run(context.Background()) }()
	waitReady(t, n, done)
	deadline := time.Now().Add(30 * time.Second)
	for st, _ := n.Replication(); st.ReplicatedTXID < 2; st, _ = n.Replication() {
		if time.Now().After(deadline) {
			t.Fatal("nothing replicated within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(proxy.after(time.Time{})) == 0 {
		t.Fatal("no write went through the proxy; the test proves nothing")
	}

	thief := lease.Info{Holder: lease.Holder{Host: "thief", PID: 1, Node: "0badc0de"}, TTL: "1h", Epoch: 99, Version: lease.FormatVersion}
	thief.AcquiredAt = time.Now().UTC()
	thief.RenewedAt, thief.ExpiresAt = thief.AcquiredAt, thief.AcquiredAt.Add(time.Hour)
	body, _ := json.Marshal(thief)
	stolenAt := time.Now()
	if _, err := s.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &s.Bucket, Key: leaseKey(cfg), Body: strings.NewReader(string(body))}); err != nil {
		t.Fatal(err)
	}

	select {
	case err := <-done:
		if !errors.Is(err, node.ErrFenced) {
			t.Fatalf("run after the lease was stolen = %v, want ErrFenced", err)
		}
		t.Logf("run returned %s after the takeover: %v", time.Since(stolenAt).Round(time.Millisecond), err)
	case <-time.After(30 * time.Second):
		t.Fatal("run still going 30 s after its lease was stolen")
	}
	// One renew interval to notice, plus slack for requests already on the wire.
	fence := stolenAt.Add(renew + 500*time.Millisecond)
	if late := proxy.after(fence); len(late) > 0 {
		t.Errorf("%d writes to db/ or files/ more than one renew interval after the takeover, first %s %s at +%s",
			len(late), late[0].op, late[0].path, late[0].at.Sub(stolenAt).Round(time.Millisecond))
	}

	// Nothing appears in the bucket after Run returned, though the database and
	// the attachments keep changing.
	before := listKeys(t, s)
	time.Sleep(2 * time.Second)
	if after := listKeys(t, s); !slices.Equal(before, after) {
		t.Errorf("the bucket changed after the fenced node stopped: %d keys -> %d, new: %q",
			len(before), len(after), slices.DeleteFunc(after, func(k string) bool { return slices.Contains(before, k) }))
	}
	stopWrites()
	if err := <-wdone; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("workload: %v", err)
	}
}

// listKeys lists every key under db/ and files/ in the bucket.
func listKeys(t *testing.T, s testenv.S3) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.Client(), &s3.ListObjectsV2Input{Bucket: &s.Bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			if k := *o.Key; strings.Contains(k, "/db/") || strings.Contains(k, "/files/") {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys
}
