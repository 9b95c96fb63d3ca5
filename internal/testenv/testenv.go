// Package testenv gives tests the real services the test rig starts: the S3 server
// (versitygw on loopback) and the stock command-line tools that read what vwstream
// writes. Under CI (CI=true) a missing service fails the test; elsewhere it skips.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Environment variables exported by scripts/test for the test binaries.
const (
	EnvEndpoint  = "VWSTREAM_TEST_S3_ENDPOINT"
	EnvAccessKey = "VWSTREAM_TEST_S3_ACCESS_KEY"
	EnvSecretKey = "VWSTREAM_TEST_S3_SECRET_KEY"
	EnvRegion    = "VWSTREAM_TEST_S3_REGION"
)

// S3 is a reachable S3 server with a fresh, empty bucket for one test.
type S3 struct {
	Endpoint  string
	AccessKey string
	SecretKey string
	Region    string
	Bucket    string
}

// InCI reports whether the tests run under CI, where missing services are failures.
func InCI() bool { return os.Getenv("CI") == "true" }

func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format+" (run the tests through scripts/test to get it)", args...)
}

// NewS3 returns the test S3 server with a new bucket that is emptied and removed
// when the test ends. It fails the test under CI when the server is missing.
func NewS3(t testing.TB) S3 {
	t.Helper()
	env := S3{
		Endpoint:  os.Getenv(EnvEndpoint),
		AccessKey: os.Getenv(EnvAccessKey),
		SecretKey: os.Getenv(EnvSecretKey),
		Region:    os.Getenv(EnvRegion),
	}
	if env.Endpoint == "" {
		unavailable(t, "no S3 test server: %s is not set", EnvEndpoint)
	}
	if env.Region == "" {
		env.Region = "us-east-1"
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	env.Bucket = strings.Trim("t-"+name+"-"+hex.EncodeToString(b[:]), "-")

	client := env.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &env.Bucket}); err != nil {
		unavailable(t, "S3 test server at %s: create bucket: %v", env.Endpoint, err)
	}
	t.Cleanup(func() { env.removeBucket(client) })
	return env
}

// Client is a plain SDK client for the test server, for tests that need to look
// at or damage the bucket behind vwstream's back.
func (e S3) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       e.Region,
		BaseEndpoint: aws.String(e.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(e.AccessKey, e.SecretKey, ""),
		UsePathStyle: true,
	})
}

func (e S3) removeBucket(client *s3.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: &e.Bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return
		}
		for _, o := range page.Contents {
			_, _ = client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &e.Bucket, Key: o.Key})
		}
	}
	_, _ = client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &e.Bucket})
}

// Tool returns the path of a stock command-line tool (gpg, age, sqlite3, tar, ...).
// Under CI a missing tool fails the test; elsewhere it skips.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		unavailable(t, "tool %s not found in PATH", name)
	}
	return p
}

// FreeAddr returns a loopback address that nothing listens on now: a port to
// serve on, or, left unused, one whose connections are refused.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
