package node_test

import (
	"context"
	"os"
	"time"

	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/vwstream/vwstream/internal/vaultsim"

	"github.com/vwstream/vwstream/internal/bucket"
	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/objstore"
)

// testWriter sends a child's output to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func dataViewFor(ctx context.Context, cfg *config.Config) (objstore.Store, error) {
	plain, err := bucket.Open(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	return bucket.Data(ctx, plain, cfg, bucket.ReadKey)
}

func listInput(bucket string) *s3.ListObjectsV2Input {
	return &s3.ListObjectsV2Input{Bucket: &bucket}
}

// countSeqs counts the workload transactions in a database (vaultsim's ledger rows).
func countSeqs(t *testing.T, path string) int {
	t.Helper()
	rep, _ := vaultsim.Verify(path, os.DevNull, time.Time{})
	return rep.DBSeqs
}
