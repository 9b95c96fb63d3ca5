package filesync_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/vwstream/vwstream/internal/filesync"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// newVault creates a small Vaultwarden data folder and closes its database.
func newVault(t testing.TB, opts vaultsim.Options) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	v, err := vaultsim.Create(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func includesOf(dir string) []filesync.Include {
	return filesync.Layout{DataDir: dir, Attachments: true, Sends: true, Config: true}.Includes()
}

// fastOptions are Options with test-sized waits.
func fastOptions(dir string, store objstore.Store) filesync.Options {
	return filesync.Options{
		Store:             store,
		DataDir:           dir,
		Includes:          includesOf(dir),
		Exclude:           []string{filepath.Join(dir, "tmp")},
		Debounce:          20 * time.Millisecond,
		StableFor:         150 * time.Millisecond,
		ReconcileInterval: time.Hour,
		DeleteGrace:       time.Hour,
		ShutdownTimeout:   10 * time.Second,
		Logger:            testLogger(),
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("VWSTREAM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func open(t testing.TB, opts filesync.Options) *filesync.Syncer {
	t.Helper()
	s, err := filesync.Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// waitIdle waits until a reconcile has listed the store and nothing is pending.
func waitIdle(t testing.TB, s *filesync.Syncer, after time.Time) filesync.Status {
	t.Helper()
	var st filesync.Status
	waitFor(t, 20*time.Second, func() bool {
		st = s.Status()
		return st.LastReconcile.After(after) && st.Pending == 0
	})
	return st
}

func waitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncedFiles returns the files of dir that file sync must store, by object key.
func syncedFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, in := range includesOf(dir) {
		err := filepath.Walk(in.Path, func(path string, fi os.FileInfo, err error) error {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			if err != nil || fi.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(in.Path, path)
			key := "files/" + in.Name
			if in.Dir {
				key += "/" + filepath.ToSlash(rel)
			}
			data, err := os.ReadFile(path)
			out[key] = data
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// storeContents reads every object under prefix through store.
func storeContents(t testing.TB, store objstore.Store, prefix string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for info, err := range store.List(t.Context(), prefix) {
		if err != nil {
			t.Fatal(err)
		}
		rc, err := store.Get(t.Context(), info.Key, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[info.Key] = data
	}
	return out
}

func sameContents(t testing.TB, got, want map[string][]byte) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: missing from the store", k)
		} else if !bytes.Equal(g, w) {
			t.Errorf("%s: stored %d bytes differ from the %d local bytes", k, len(g), len(w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: stored but not a synced local file", k)
		}
	}
}

func newLocal(t testing.TB) *objstore.Local {
	t.Helper()
	l, err := objstore.NewLocal(filepath.Join(t.TempDir(), "target"))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func newS3(t testing.TB, env testenv.S3, endpoint string) *objstore.S3 {
	t.Helper()
	if endpoint == "" {
		endpoint = env.Endpoint
	}
	s, err := objstore.NewS3(t.Context(), objstore.S3Options{
		Endpoint: endpoint, Region: env.Region, Bucket: env.Bucket, Prefix: "vw",
		AccessKeyID: env.AccessKey, SecretAccessKey: env.SecretKey, ForcePathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// bucketKeys lists the bucket with the raw SDK client, behind vwstream's back.
func bucketKeys(t testing.TB, env testenv.S3, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(env.Client(), &s3.ListObjectsV2Input{Bucket: &env.Bucket, Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	sort.Strings(keys)
	return keys
}

func rawGet(t testing.TB, env testenv.S3, key string) ([]byte, error) {
	out, err := env.Client().GetObject(t.Context(), &s3.GetObjectInput{Bucket: &env.Bucket, Key: &key})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// faultProxy is a reverse proxy in front of the S3 server that answers 500 to
// the requests fail picks, for faults the real server cannot produce on demand;
// between hang and resume it accepts requests and holds them unanswered, as a
// frozen server or a partition that drops packets does.
type faultProxy struct {
	URL    string
	fail   atomic.Pointer[func(*http.Request) bool]
	refuse atomic.Pointer[func(*http.Request) bool] // 403: no client retries

	mu      sync.Mutex
	held    chan struct{} // closed by resume; nil while forwarding
	firstAt time.Time     // when the first request was held
}

func newFaultProxy(t testing.TB, target string) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u) // keeps the Host header the client signed
	fp := &faultProxy{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := fp.fail.Load(); f != nil && (*f)(r) {
			http.Error(w, "<Error><Code>InternalError</Code><Message>injected</Message></Error>", http.StatusInternalServerError)
			return
		}
		if f := fp.refuse.Load(); f != nil && (*f)(r) {
			http.Error(w, "<Error><Code>AccessDenied</Code><Message>injected</Message></Error>", http.StatusForbidden)
			return
		}
		if held := fp.hold(); held != nil {
			select {
			case <-held:
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(fp.resume) // never leave a request held behind a failed test
	fp.URL = srv.URL
	return fp
}

func (fp *faultProxy) failWhen(f func(*http.Request) bool) { fp.fail.Store(&f) }

// refuseWhen answers 403 AccessDenied to the requests f picks: an error the
// S3 client does not retry, so the syncer's own backoff grows quickly.
func (fp *faultProxy) refuseWhen(f func(*http.Request) bool) { fp.refuse.Store(&f) }

// hold returns the channel a request waits on, nil while forwarding.
func (fp *faultProxy) hold() chan struct{} {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.held != nil && fp.firstAt.IsZero() {
		fp.firstAt = time.Now()
	}
	return fp.held
}

func (fp *faultProxy) hang() {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.held == nil {
		fp.held, fp.firstAt = make(chan struct{}), time.Time{}
	}
}

func (fp *faultProxy) resume() {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.held != nil {
		close(fp.held)
		fp.held = nil
	}
}

// firstHeld is when the first request was held since hang, zero before one.
func (fp *faultProxy) firstHeld() time.Time {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return fp.firstAt
}

func isList(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Query().Has("list-type")
}

// treeOf maps every path under dir to its content ("<dir>" for folders), to see
// whether a failed restore touched anything.
func treeOf(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if fi.IsDir() {
			out[rel] = "<dir>"
			return nil
		}
		data, err := os.ReadFile(path)
		out[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func randomData(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}
