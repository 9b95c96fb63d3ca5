// Package objstore_test benchmarks internal/objstore's S3 uploads against the
// plain SDK. It needs the test S3 server (see internal/testenv):
//
//	go test ./bench/objstore -bench . -run '^$' -benchtime 3x
//
// Results are recorded in RESULTS.md.
package objstore_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/testenv"
)

const (
	streamSize = 256 << 20 // the throughput comparison
	rssSize    = 1 << 30   // the memory bound check
	childEnv   = "VWSTREAM_BENCH_RSS_CHILD"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{42}).Read(b)
	return b
}

func newStore(tb testing.TB, env testenv.S3) *objstore.S3 {
	s, err := objstore.NewS3(tb.Context(), objstore.S3Options{
		Endpoint: env.Endpoint, Region: env.Region, Bucket: env.Bucket,
		AccessKeyID: env.AccessKey, SecretAccessKey: env.SecretKey,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchmarkPut256MiB compares objstore's streamed upload (length unknown,
// multipart, checksummed and verified) with one PutObject of the same bytes
// through a default SDK client given a seekable body of known length.
func BenchmarkPut256MiB(b *testing.B) {
	env := testenv.NewS3(b)
	data := randomBytes(streamSize)

	b.Run("objstore", func(b *testing.B) {
		s := newStore(b, env)
		b.SetBytes(streamSize)
		for b.Loop() {
			if _, err := s.Put(b.Context(), "bench/objstore", struct{ io.Reader }{bytes.NewReader(data)}, objstore.PutOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sdk", func(b *testing.B) {
		c := env.Client()
		b.SetBytes(streamSize)
		for b.Loop() {
			_, err := c.PutObject(b.Context(), &s3.PutObjectInput{
				Bucket: &env.Bucket, Key: aws.String("bench/sdk"), Body: bytes.NewReader(data),
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPeakRSS1GiB streams 1 GiB of generated data through objstore in a
// child process and reports the child's peak resident set size.
func BenchmarkPeakRSS1GiB(b *testing.B) {
	env := testenv.NewS3(b)
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRSSChild$", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"="+env.Bucket)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		kb := parseKB(string(out), "VmHWM:")
		if kb == 0 {
			b.Fatalf("child reported no VmHWM:\n%s", out)
		}
		b.ReportMetric(float64(kb)/1024, "peak-RSS-MiB")
	}
}

// TestRSSChild is the child of BenchmarkPeakRSS1GiB; run alone it does nothing.
func TestRSSChild(t *testing.T) {
	bucket := os.Getenv(childEnv)
	if bucket == "" {
		t.Skip("only run as BenchmarkPeakRSS1GiB's child")
	}
	env := testenv.S3{
		Endpoint:  os.Getenv(testenv.EnvEndpoint),
		AccessKey: os.Getenv(testenv.EnvAccessKey),
		SecretKey: os.Getenv(testenv.EnvSecretKey),
		Region:    os.Getenv(testenv.EnvRegion),
		Bucket:    bucket,
	}
	s := newStore(t, env)
	src := io.LimitReader(rand.NewChaCha8([32]byte{7}), rssSize)
	info, err := s.Put(t.Context(), "bench/rss", src, objstore.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != rssSize {
		t.Fatalf("stored %d bytes, want %d", info.Size, rssSize)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("VmHWM: %d kB\n", parseKB(string(status), "VmHWM:"))
}

func parseKB(text, field string) int64 {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), field); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
