package node_test

// Cold starts from the bucket: a node restoring the replica's newest state
// continues replication with the next transaction; it does not upload the
// database it has just downloaded again (dbrepl's seed.go).

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// coldStartDBMB is the database of TestRun_ColdStartUploadsTheWriteOnly: 100 MB
// of random bytes, which neither compression nor a delta shrinks, beside the
// stand-in's tables. It takes a few seconds each way on loopback.
const coldStartDBMB = 100

// uploadCounter is a reverse proxy in front of the S3 server that counts the
// request body bytes clients send (PUT and POST: objects, parts, deletes).
type uploadCounter struct {
	URL   string
	bytes atomic.Int64
}

func newUploadCounter(t *testing.T, endpoint string) *uploadCounter {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c := &uploadCounter{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // a client hanging up on kill -9 is not news
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && (r.Method == http.MethodPut || r.Method == http.MethodPost) {
			r.Body = countingBody{r.Body, &c.bytes}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// fatten adds mb megabytes of random bytes to the database at path, with the
// stock sqlite3 tool.
func fatten(t *testing.T, path string, mb int) {
	t.Helper()
	sqlite3 := testenv.Tool(t, "sqlite3")
	q := fmt.Sprintf(`CREATE TABLE fill (b BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n LIMIT %d) INSERT INTO fill SELECT randomblob(4000) FROM n;`, mb*256)
	if out, err := exec.Command(sqlite3, path, q).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}
}

// populate replicates a vault with an mb-megabyte database into s with a
// first `vwstream run` (sidecar, no child) while three rows are written
// beside it, and with matured, matures the replica.
func populate(t *testing.T, vwstream string, s testenv.S3, data string, mb int, matured bool) *config.Config {
	t.Helper()
	createVault(t, data, 31)
	fatten(t, filepath.Join(data, vaultsim.DBName), mb)
	cfg := s3Config(t, s, data)
	statusAddr := testenv.FreeAddr(t)
	p := startProc(t, "vwstream run (first)", runEnv(s, data, "STATUS_ADDR="+statusAddr), vwstream, "run")
	caughtUp := func(doc *status.Status) bool {
		return replicating(doc) && doc.DB.TXIDReplicated >= doc.DB.TXIDLocal
	}
	waitStatus(t, p, statusAddr, "the database in the replica", caughtUp)
	for range 3 {
		writeRow(t, filepath.Join(data, vaultsim.DBName), "x'01'")
	}
	waitStatus(t, p, statusAddr, "the rows in the replica", caughtUp)
	p.signal(syscall.SIGTERM)
	if code := p.wait(60 * time.Second); code != 0 {
		t.Fatalf("first run exited with code %d", code)
	}
	if matured {
		mature(t, s, cfg)
	}
	return cfg
}

// writeRow adds a row to the fill table, as a sidecar's Vaultwarden writes.
func writeRow(t *testing.T, path, blob string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO fill (b) VALUES (` + blob + `)`); err != nil {
		t.Fatal(err)
	}
}

// mature runs the replication engine once more on the first data folder with
// every compaction level due at once, until levels 1 to 3 and the snapshot
// level hold the newest transaction: the replica as a day of running leaves
// it. A young replica's first compactions upload each level's first copy of
// the database (litestream fills every level once, restore or not), which a
// cold start would otherwise run beside the write this test measures.
func mature(t *testing.T, s testenv.S3, cfg *config.Config) {
	t.Helper()
	ctx := context.Background()
	view, err := dataViewFor(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := dbrepl.New(dbrepl.Options{DBPath: cfg.DBPath, Store: view, Logger: testLogger(t),
		CompactionLevels: []time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close(ctx) }()
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		top := levelMax(t, s, "0000")
		if levelMax(t, s, "0001") == top && levelMax(t, s, "0002") == top && levelMax(t, s, "0003") == top && levelMax(t, s, "0009") > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("levels 1 to 3 did not reach the newest transaction within 5 minutes")
		}
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// levelMax is the newest transaction stored at one level (hex folder name).
func levelMax(t *testing.T, s testenv.S3, level string) uint64 {
	t.Helper()
	out, err := s.Client().ListObjectsV2(context.Background(), listInput(s.Bucket))
	if err != nil {
		t.Fatal(err)
	}
	var top uint64
	for _, o := range out.Contents {
		dir, name := path.Split(*o.Key)
		if !strings.HasSuffix(dir, "/db/"+level+"/") || len(name) < 33 {
			continue
		}
		if v, err := strconv.ParseUint(name[17:33], 16, 64); err == nil {
			top = max(top, v)
		}
	}
	return top
}

// integrityOK runs PRAGMA integrity_check with the stock sqlite3 tool.
func integrityOK(t *testing.T, path string) {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "sqlite3"), "-readonly", path, "PRAGMA integrity_check;").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("integrity_check of %s: %v: %s", path, err, out)
	}
}

// TestRun_ColdStartUploadsTheWriteOnly: a node starting on an empty data
// folder restores the replica (a 100 MB database), then one row is written
// beside it (sidecar); until that row is in the bucket the node uploads
// little more than the row: no copy of the database it has just restored.
// The bucket then restores to the row, and the stock sqlite3 finds the
// database whole.
func TestRun_ColdStartUploadsTheWriteOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("replicates and restores a 100 MB database")
	}
	vwstream, _ := binaries(t)
	s := testenv.NewS3(t)
	work := t.TempDir()
	cfg := populate(t, vwstream, s, filepath.Join(work, "first"), coldStartDBMB, true)

	counter := newUploadCounter(t, s.Endpoint)
	data := filepath.Join(work, "data")
	statusAddr := testenv.FreeAddr(t)
	env := runEnv(s, data, "STATUS_ADDR="+statusAddr, "S3_ENDPOINT="+counter.URL)
	p := startProc(t, "vwstream run (cold start)", env, vwstream, "run")
	doc := waitStatus(t, p, statusAddr, "replication after the cold start", replicating)
	restored := doc.DB.TXIDLocal
	if !strings.Contains(p.stderr.String(), "restored before start") {
		t.Fatalf("the node did not restore at start; log:\n%s", p.stderr.String())
	}
	startup := counter.bytes.Load()

	writeRow(t, filepath.Join(data, vaultsim.DBName), "x'c0ffee'")
	written := time.Now()
	doc = waitStatus(t, p, statusAddr, "the row in the replica", func(doc *status.Status) bool {
		return doc.DB != nil && doc.DB.TXIDReplicated > restored && doc.DB.TXIDReplicated >= doc.DB.TXIDLocal
	})
	durable := time.Since(written)
	total := counter.bytes.Load()
	fi, err := os.Stat(filepath.Join(data, vaultsim.DBName))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("database %.1f MB restored at transaction %d; uploaded %d bytes during start-up, %d more until the row (transaction %d) was in the bucket %s after its commit",
		float64(fi.Size())/(1<<20), restored, startup, total-startup, doc.DB.TXIDReplicated, durable.Round(time.Millisecond))
	out, err := s.Client().ListObjectsV2(context.Background(), listInput(s.Bucket))
	if err != nil {
		t.Fatal(err)
	}
	var objs []string
	for _, o := range out.Contents {
		objs = append(objs, fmt.Sprintf("%s %d %s", *o.Key, *o.Size, o.LastModified.Format("15:04:05.000")))
	}
	t.Logf("bucket:\n%s", strings.Join(objs, "\n"))
	if limit := int64(1 << 20); total > limit {
		t.Fatalf("the cold start and one row uploaded %d bytes (database %d bytes): want at most %d, no copy of the database", total, fi.Size(), limit)
	}
	if doc.DB.TXIDReplicated != restored+1 {
		t.Errorf("the row went up as transaction %d, want %d, the one after the restored", doc.DB.TXIDReplicated, restored+1)
	}
	if strings.Contains(p.stderr.String(), "continuity not proven") {
		t.Errorf("the start after the restore wrote a full copy; log:\n%s", p.stderr.String())
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(60 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0", code)
	}

	again := filepath.Join(restoreAll(t, cfg), vaultsim.DBName)
	integrityOK(t, again)
	var n int
	if err := queryOne(again, `SELECT count(*) FROM fill WHERE b = x'c0ffee'`, &n); err != nil || n != 1 {
		t.Fatalf("the row written after the cold start: %d in the restored database (%v)", n, err)
	}
}

func queryOne(path, q string, dst any) error {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	return db.QueryRowContext(context.Background(), q).Scan(dst)
}

// children returns the PIDs of pid's child processes.
func children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, field := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(field); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// TestRun_KillNineRightAfterColdStart: a node cold-starts from the bucket
// with a writing stand-in as its child and is killed with kill -9, with its
// child, right after the restore: as soon as the log says it restored, as
// soon as the child runs, and a second later. A restart on the same volume
// resumes and, once stopped, the bucket restores to every row the stand-in
// committed, and the stock sqlite3 finds the database whole. Each cycle
// starts from an empty folder, so every kill lands on a freshly seeded state.
func TestRun_KillNineRightAfterColdStart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes for a minute")
	}
	vwstream, vwload := binaries(t)
	s := testenv.NewS3(t)
	work := t.TempDir()
	cfg := populate(t, vwstream, s, filepath.Join(work, "first"), 8, false)
	ledger := filepath.Join(work, "ledger")
	statusAddr := testenv.FreeAddr(t)

	for i, kill := range []string{"restored", "child", "a second later"} {
		data := filepath.Join(work, fmt.Sprintf("data%d", i))
		env := runEnv(s, data, "STATUS_ADDR="+statusAddr, "LEASE_TTL=120s", "LEASE_RENEW_INTERVAL=1s")
		serve := []string{vwload, "serve", "--dir", data, "--addr", testenv.FreeAddr(t), "--write-rate", "100", "--ledger", ledger}
		p := startProc(t, fmt.Sprintf("vwstream run (cold start %d, killed)", i), env, append([]string{vwstream, "run", "--"}, serve...)...)
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if p.exited() || time.Now().After(deadline) {
				t.Fatalf("cycle %d: no restore within 60 s (exit %v)", i, p.exited())
			}
			if !strings.Contains(p.stderr.String(), "restored before start") {
				continue
			}
			if kill == "restored" || len(children(p.cmd.Process.Pid)) > 0 {
				break
			}
		}
		if kill == "a second later" {
			time.Sleep(time.Second)
		}
		kids := children(p.cmd.Process.Pid)
		p.signal(syscall.SIGKILL)
		for _, kid := range kids {
			_ = syscall.Kill(-kid, syscall.SIGKILL) // the stand-in runs in its own process group
		}
		p.wait(30 * time.Second)
		t.Logf("cycle %d: killed %s (%d child processes)", i, kill, len(kids))

		p2 := startProc(t, fmt.Sprintf("vwstream run (cold start %d, restarted)", i), env, append([]string{vwstream, "run", "--"}, serve...)...)
		waitStatus(t, p2, statusAddr, "replication after the kill", replicating)
		time.Sleep(time.Second)
		p2.signal(syscall.SIGTERM)
		if code := p2.wait(60 * time.Second); code != 0 {
			t.Fatalf("cycle %d: the restarted node exited with code %d, want 0", i, code)
		}
		if !strings.Contains(p2.stderr.String(), "state=resume") {
			t.Fatalf("cycle %d: the restart did not resume from the crashed volume; log:\n%s", i, p2.stderr.String())
		}

		restored := filepath.Join(restoreAll(t, cfg), vaultsim.DBName)
		integrityOK(t, restored)
		rep, err := vaultsim.Verify(restored, ledger, time.Time{})
		if err != nil {
			t.Fatalf("cycle %d: the bucket lacks committed rows after kill -9 right after the cold start: %v (%+v)", i, err, rep)
		}
		t.Logf("cycle %d: %d rows committed, %d in the bucket", i, rep.LedgerEntries, rep.DBSeqs)
	}
}
