package dbrepl_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/superfly/ltx"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/testenv"
)

// side is one replicator under test: vwstream's dbrepl or the stock
// litestream CLI, each with its own database, key prefix and counting proxy.
type side struct {
	name   string
	dbPath string
	l0     string // bucket key prefix of its level-0 LTX files
	proxy  *testenv.Counter
	stop   func(t *testing.T)
}

// maxL0 returns the highest TXID among the side's level-0 objects, listing
// the server directly (not through the counting proxy).
func maxL0(ctx context.Context, s testenv.S3, client *s3.Client, prefix string) (ltx.TXID, error) {
	var max ltx.TXID
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: &s.Bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, err
		}
		for _, o := range page.Contents {
			_, hi, err := ltx.ParseFilename(path.Base(*o.Key))
			if err == nil && hi > max {
				max = hi
			}
		}
	}
	return max, nil
}

// vwStore is vwstream's sealed data view under prefix, through endpoint.
func vwStore(t *testing.T, s testenv.S3, endpoint, prefix string, key *seal.Key) objstore.Store {
	t.Helper()
	inner, err := objstore.NewS3(context.Background(), objstore.S3Options{
		Endpoint: endpoint, Region: s.Region, Bucket: s.Bucket, Prefix: prefix,
		AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey, ForcePathStyle: true,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return seal.NewStore(inner, key)
}

// startVwstream replicates dbPath with dbrepl's defaults, sealed, through its
// own counting proxy.
func startVwstream(t *testing.T, s testenv.S3, dbPath, prefix string, key *seal.Key) *side {
	t.Helper()
	proxy := testenv.NewCounter(t, s.Endpoint)
	r, err := dbrepl.New(dbrepl.Options{DBPath: dbPath, Store: vwStore(t, s, proxy.URL, prefix, key),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &side{name: "vwstream", dbPath: dbPath, l0: prefix + "/" + layout.DB + "0000/", proxy: proxy,
		stop: func(t *testing.T) {
			if err := r.Close(context.Background()); err != nil {
				t.Errorf("vwstream close: %v", err)
			}
		}}
}

// litestreamConfig writes a stock litestream configuration that replicates
// dbPath to prefix on endpoint, with every other setting at its default.
func litestreamConfig(t *testing.T, s testenv.S3, endpoint, dbPath, prefix string) string {
	t.Helper()
	cfg := fmt.Sprintf(`dbs:
  - path: %s
    replica:
      type: s3
      bucket: %s
      path: %s
      endpoint: %s
      region: %s
      force-path-style: true
      access-key-id: %s
      secret-access-key: %s
`, dbPath, s.Bucket, prefix, endpoint, s.Region, s.AccessKey, s.SecretKey)
	p := filepath.Join(t.TempDir(), "litestream.yml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// litestreamEnv is the environment for the litestream child: AWS_CA_BUNDLE
// makes its S3 client fail to start, so it is left out.
func litestreamEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_CA_BUNDLE=") {
			env = append(env, kv)
		}
	}
	return env
}

// litestreamBin is the stock litestream v0.5.18 that scripts/test builds.
func litestreamBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("VWSTREAM_TEST_LITESTREAM")
	if bin == "" {
		t.Fatal("VWSTREAM_TEST_LITESTREAM is not set: run the benchmark through scripts/test")
	}
	return bin
}

// startLitestream runs `litestream replicate` on dbPath through its own
// counting proxy, until stop sends it SIGTERM (its graceful shutdown syncs).
func startLitestream(t *testing.T, s testenv.S3, dbPath, prefix string) *side {
	t.Helper()
	proxy := testenv.NewCounter(t, s.Endpoint)
	cfg := litestreamConfig(t, s, proxy.URL, dbPath, prefix)
	logf, err := os.Create(filepath.Join(t.TempDir(), "litestream.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(litestreamBin(t), "replicate", "-config", cfg)
	cmd.Env = litestreamEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func(t *testing.T) {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("litestream did not stop in 60s")
		}
		_ = logf.Close()
	}
	t.Cleanup(func() { stop(t) })
	return &side{name: "litestream", dbPath: dbPath, l0: prefix + "/0000/", proxy: proxy, stop: stop}
}
