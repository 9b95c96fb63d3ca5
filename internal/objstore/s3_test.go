package objstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/objstore/storetest"
	"github.com/vwstream/vwstream/internal/testenv"
)

// newS3 opens a store on env's bucket with small parts, so multipart paths
// are exercised by modest streams.
func newS3(t *testing.T, env testenv.S3, edit func(*objstore.S3Options)) *objstore.S3 {
	t.Helper()
	opts := objstore.S3Options{
		Endpoint:        env.Endpoint,
		Region:          env.Region,
		Bucket:          env.Bucket,
		Prefix:          "vaultwarden",
		AccessKeyID:     env.AccessKey,
		SecretAccessKey: env.SecretKey,
		PartSize:        objstore.MinPartSize,
	}
	if edit != nil {
		edit(&opts)
	}
	s, err := objstore.NewS3(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pendingUploads lists the bucket's unfinished multipart uploads.
func pendingUploads(env testenv.S3) func(ctx context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		out, err := env.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &env.Bucket})
		if err != nil {
			return nil, err
		}
		var keys []string
		for _, u := range out.Uploads {
			keys = append(keys, aws.ToString(u.Key))
		}
		return keys, nil
	}
}

func TestS3_Conformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Target {
		env := testenv.NewS3(t)
		return storetest.Target{Store: newS3(t, env, nil), Pending: pendingUploads(env), PartSize: objstore.MinPartSize}
	})
}

func TestS3_String(t *testing.T) {
	s, err := objstore.NewS3(t.Context(), objstore.S3Options{
		Endpoint: "https://minio.example:9000", Bucket: "b", Prefix: "/vw/",
		AccessKeyID: "AKID", SecretAccessKey: "sekrit",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.String(), "s3://b/vw (https://minio.example:9000)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// proxy is a reverse proxy in front of the test server whose behaviour a
// test can change per request.
type proxy struct {
	*httptest.Server
	requests atomic.Int64
	// intercept may answer a request itself; it returns false to pass it on.
	intercept func(w http.ResponseWriter, r *http.Request) bool
	// forward passes a request on to the server.
	forward http.HandlerFunc
}

func newProxy(t *testing.T, env testenv.S3, tls bool) *proxy {
	t.Helper()
	target, err := url.Parse(env.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // the signature covers the Host header
	}}
	p.forward = rp.ServeHTTP
	p.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		if p.intercept != nil && p.intercept(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	p.Config.ErrorLog = log.New(io.Discard, "", 0) // rejected TLS handshakes are expected
	if tls {
		p.StartTLS()
	} else {
		p.Start()
	}
	t.Cleanup(p.Close)
	return p
}

func TestS3_Put_RetriesTransientErrors(t *testing.T) {
	env := testenv.NewS3(t)
	p := newProxy(t, env, false)
	var failures atomic.Int64
	p.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && failures.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `<Error><Code>SlowDown</Code><Message>reduce your request rate</Message></Error>`)
			return true
		}
		return false
	}
	s := newS3(t, env, func(o *objstore.S3Options) { o.Endpoint = p.URL })
	if _, err := s.Put(t.Context(), "k", strings.NewReader("survives"), objstore.PutOptions{}); err != nil {
		t.Fatalf("put through two 503s: %v", err)
	}
	if got := failures.Load(); got < 3 {
		t.Errorf("%d PUT requests, want 2 failed + 1 retried", got)
	}
	rc, err := s.Get(t.Context(), "k", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "survives" {
		t.Errorf("get = %q", b)
	}
}

func TestS3_Put_LostReply(t *testing.T) {
	env := testenv.NewS3(t)
	p := newProxy(t, env, false)
	var lost atomic.Bool
	p.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && lost.CompareAndSwap(false, true) {
			// The server creates the object, but the client hears 503.
			p.forward(httptest.NewRecorder(), r)
			w.WriteHeader(http.StatusBadGateway)
			return true
		}
		return false
	}
	s := newS3(t, env, func(o *objstore.S3Options) { o.Endpoint = p.URL })
	// The retry meets the object the first attempt created; that is success,
	// not a failed precondition.
	if _, err := s.Put(t.Context(), "lease", strings.NewReader("mine"), objstore.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatalf("create whose first reply was lost: %v", err)
	}
	if !lost.Load() {
		t.Fatal("no reply was lost")
	}
	// Someone else's object is still a failed precondition.
	if _, err := s.Put(t.Context(), "lease", strings.NewReader("theirs"), objstore.PutOptions{IfNoneMatch: true}); !errors.Is(err, objstore.ErrPrecondition) {
		t.Errorf("second create = %v, want ErrPrecondition", err)
	}
}

func TestS3_Delete_WithoutDeleteObjects(t *testing.T) {
	env := testenv.NewS3(t)
	p := newProxy(t, env, false)
	var refused atomic.Int64
	p.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && r.URL.Query().Has("delete") {
			refused.Add(1)
			w.WriteHeader(http.StatusNotImplemented)
			io.WriteString(w, `<Error><Code>NotImplemented</Code><Message>not here</Message></Error>`)
			return true
		}
		return false
	}
	s := newS3(t, env, func(o *objstore.S3Options) { o.Endpoint = p.URL })
	for _, k := range []string{"a", "b"} {
		if _, err := s.Put(t.Context(), k, strings.NewReader(k), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(t.Context(), "a", "b", "missing"); err != nil {
		t.Fatalf("delete without DeleteObjects: %v", err)
	}
	if refused.Load() == 0 {
		t.Fatal("DeleteObjects was never tried")
	}
	for _, err := range s.List(t.Context(), "") {
		if err != nil {
			t.Fatal(err)
		}
		t.Error("objects remain after delete")
	}
}

// corruptingTransport flips a byte in every PUT body after the SDK has
// computed its checksum and signature, as a faulty network or proxy would.
type corruptingTransport struct{ next http.RoundTripper }

func (c corruptingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut && r.Body != nil && r.ContentLength > 0 && r.Header.Get("X-Amz-Copy-Source") == "" {
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		body[len(body)/2] ^= 0xff
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	return c.next.RoundTrip(r)
}

func TestS3_Put_CorruptedInTransit(t *testing.T) {
	env := testenv.NewS3(t)
	s := newS3(t, env, func(o *objstore.S3Options) {
		o.HTTPClient = &http.Client{Transport: corruptingTransport{http.DefaultTransport}}
	})
	for _, size := range []int{1000, objstore.MinPartSize + 1000} {
		data := bytes.Repeat([]byte("v"), size)
		_, err := s.Put(t.Context(), "damaged", struct{ io.Reader }{bytes.NewReader(data)}, objstore.PutOptions{})
		if !errors.Is(err, objstore.ErrChecksum) {
			t.Errorf("put of %d bytes corrupted in transit = %v, want ErrChecksum", size, err)
		} else {
			assertOneLine(t, err, "checksum mismatch")
		}
		if _, err := s.Stat(t.Context(), "damaged"); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("stat after corrupted put = %v, want ErrNotFound", err)
		}
	}
	if p, err := pendingUploads(env)(t.Context()); err != nil || len(p) != 0 {
		t.Errorf("pending uploads = %q, %v", p, err)
	}
}

// lyingTransport reports a different stored checksum than the service has, in
// the PUT's answer and in HEAD, standing in for a service that stored other
// bytes than it acknowledged.
type lyingTransport struct{ next http.RoundTripper }

func (l lyingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err == nil && (r.Method == http.MethodHead || r.Method == http.MethodPut) && resp.Header.Get("X-Amz-Checksum-Sha256") != "" {
		resp.Header.Set("X-Amz-Checksum-Sha256", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	}
	return resp, err
}

func TestS3_Put_VerifiesStoredChecksum(t *testing.T) {
	env := testenv.NewS3(t)
	s := newS3(t, env, func(o *objstore.S3Options) {
		o.HTTPClient = &http.Client{Transport: lyingTransport{http.DefaultTransport}}
	})
	_, err := s.Put(t.Context(), "lease", strings.NewReader("x"), objstore.PutOptions{IfNoneMatch: true})
	if !errors.Is(err, objstore.ErrChecksum) {
		t.Fatalf("put with mismatching stored checksum = %v, want ErrChecksum", err)
	}
	assertOneLine(t, err, "deleted")
	// The key did not exist before, so the damaged object is removed.
	if _, err := s.Stat(t.Context(), "lease"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("stat after mismatch = %v, want ErrNotFound", err)
	}
}

func assertOneLine(t *testing.T, err error, want ...string) {
	t.Helper()
	msg := err.Error()
	t.Logf("error: %s", msg)
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans lines: %q", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not mention %q", msg, w)
		}
	}
}

func TestS3_MissingBucket(t *testing.T) {
	env := testenv.NewS3(t)
	env.Bucket = "vwstream-no-such-bucket"
	s := newS3(t, env, nil)
	ctx := t.Context()
	_, putErr := s.Put(ctx, "k", strings.NewReader("x"), objstore.PutOptions{})
	_, statErr := s.Stat(ctx, "k")
	var listErr error
	for _, err := range s.List(ctx, "") {
		listErr = err
	}
	for op, err := range map[string]error{"put": putErr, "stat": statErr, "list": listErr} {
		if !errors.Is(err, objstore.ErrPermanent) {
			t.Errorf("%s = %v, want ErrPermanent", op, err)
			continue
		}
		assertOneLine(t, err, `bucket "vwstream-no-such-bucket" does not exist`, env.Endpoint)
	}
}

func TestS3_WrongSecret(t *testing.T) {
	env := testenv.NewS3(t)
	const secret = "not-the-secret-0123456789"
	s := newS3(t, env, func(o *objstore.S3Options) { o.SecretAccessKey = secret })
	start := time.Now()
	_, err := s.Put(t.Context(), "k", strings.NewReader("x"), objstore.PutOptions{})
	if !errors.Is(err, objstore.ErrPermanent) {
		t.Fatalf("put with wrong secret = %v, want ErrPermanent", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error reveals the secret: %q", err)
	}
	assertOneLine(t, err, "S3_SECRET_ACCESS_KEY")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("permanent error took %v: it was retried", d)
	}
}

func TestS3_Unreachable(t *testing.T) {
	s, err := objstore.NewS3(t.Context(), objstore.S3Options{
		Endpoint: "http://127.0.0.1:1", Bucket: "b", AccessKeyID: "k", SecretAccessKey: "s",
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Stat(t.Context(), "k")
	if err == nil {
		t.Fatal("stat on a closed port succeeded")
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("gave up after %v", d)
	}
	if errors.Is(err, objstore.ErrPermanent) || errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("unreachable endpoint reported as %v", err)
	}
	assertOneLine(t, err, "s3: cannot reach http://127.0.0.1:1: connection refused")
}

func TestS3_CustomCA(t *testing.T) {
	env := testenv.NewS3(t)
	p := newProxy(t, env, true)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Certificate().Raw})

	untrusted := newS3(t, env, func(o *objstore.S3Options) { o.Endpoint = p.URL })
	_, err := untrusted.Put(t.Context(), "k", strings.NewReader("x"), objstore.PutOptions{})
	if !errors.Is(err, objstore.ErrPermanent) {
		t.Fatalf("put to a private CA without CAFile = %v, want ErrPermanent", err)
	}
	assertOneLine(t, err, "certificate")

	// AWS_CA_BUNDLE pointing nowhere must not break construction: the
	// caller passes the CA explicitly and the SDK never reads it.
	t.Setenv("AWS_CA_BUNDLE", filepath.Join(t.TempDir(), "missing.pem"))
	trusted := newS3(t, env, func(o *objstore.S3Options) { o.Endpoint = p.URL; o.CAPEM = pemBytes })
	if _, err := trusted.Put(t.Context(), "k", strings.NewReader("over tls"), objstore.PutOptions{}); err != nil {
		t.Fatalf("put with CAPEM: %v", err)
	}
	rc, err := trusted.Get(t.Context(), "k", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "over tls" {
		t.Errorf("get = %q", b)
	}
}

func TestNewS3_BadCA(t *testing.T) {
	_, err := objstore.NewS3(t.Context(), objstore.S3Options{Bucket: "b", CAPEM: []byte("not a certificate")})
	if err == nil || !strings.Contains(err.Error(), "CA bundle") {
		t.Errorf("NewS3 with a CA bundle of no certificate = %v, want a CA bundle error", err)
	}
}

// A source above the copy limit is copied in parts (the service copies each
// range) and comes out byte for byte; a service that copies no parts gets one
// CopyObject. Neither leaves an unfinished upload behind.
func TestS3_Copy_InParts(t *testing.T) {
	env := testenv.NewS3(t)
	data := make([]byte, 4*objstore.MinPartSize+12345)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	for _, refuse := range []bool{false, true} {
		p := newProxy(t, env, false)
		var partCopies, refused atomic.Int64
		p.intercept = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodPut || r.Header.Get("X-Amz-Copy-Source") == "" || !r.URL.Query().Has("partNumber") {
				return false
			}
			if refuse {
				refused.Add(1)
				w.WriteHeader(http.StatusNotImplemented)
				io.WriteString(w, `<Error><Code>NotImplemented</Code><Message>no part copies here</Message></Error>`)
				return true
			}
			partCopies.Add(1)
			return false
		}
		s := newS3(t, env, func(o *objstore.S3Options) { o.Endpoint = p.URL; o.CopyPartsAbove = 2 * objstore.MinPartSize })
		src, dst := fmt.Sprintf("copy-src-%t", refuse), fmt.Sprintf("copy-dst-%t", refuse)
		if _, err := s.Put(t.Context(), src, bytes.NewReader(data), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		info, err := s.Copy(t.Context(), src, dst)
		if err != nil {
			t.Fatalf("copy (part copies refused: %t): %v", refuse, err)
		}
		if info.Size != int64(len(data)) || info.Key != dst {
			t.Fatalf("copy info %+v", info)
		}
		copyHolds(t, s, dst, data)
		if refuse && refused.Load() == 0 || !refuse && partCopies.Load() != 5 {
			t.Fatalf("part copies: %d made, %d refused; want 5 made, or refused then one CopyObject", partCopies.Load(), refused.Load())
		}
		if left, err := pendingUploads(env)(t.Context()); err != nil || len(left) > 0 {
			t.Fatalf("unfinished uploads left: %v %v", left, err)
		}
	}
}

// A copy in parts whose completion was done by the server but whose reply was
// lost: the retry meets NoSuchUpload, and the copy in place is the success it
// is (not "the source does not exist").
func TestS3_Copy_InParts_LostReply(t *testing.T) {
	env := testenv.NewS3(t)
	data := make([]byte, 2*objstore.MinPartSize+99)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, env, false)
	var lose, lost atomic.Bool
	p.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || !r.URL.Query().Has("uploadId") || !lose.Load() {
			return false
		}
		if lost.CompareAndSwap(false, true) {
			p.forward(httptest.NewRecorder(), r) // the server completes the upload
			w.WriteHeader(http.StatusBadGateway)
			return true
		}
		// The retry, answered as AWS answers a completed upload's (versitygw
		// completes it again).
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>`)
		return true
	}
	s := newS3(t, env, func(o *objstore.S3Options) { o.Endpoint = p.URL; o.CopyPartsAbove = objstore.MinPartSize })
	if _, err := s.Put(t.Context(), "lost-src", bytes.NewReader(data), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	lose.Store(true) // the copy's completion, not the Put's
	if _, err := s.Copy(t.Context(), "lost-src", "lost-dst"); err != nil {
		t.Fatalf("copy whose completion reply was lost: %v", err)
	}
	if !lost.Load() {
		t.Fatal("no completion reply was lost")
	}
	copyHolds(t, s, "lost-dst", data)
}

// copyHolds fails the test unless key holds exactly the source's bytes.
func copyHolds(t *testing.T, s *objstore.S3, key string, want []byte) {
	t.Helper()
	rc, err := s.Get(t.Context(), key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the copy differs from its source (%d bytes, %v)", len(got), err)
	}
}
