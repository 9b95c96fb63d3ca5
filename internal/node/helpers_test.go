package node_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/target"
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
	plain, err := target.Open(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	view, _, err := target.Data(ctx, plain, cfg, target.ReadKey)
	return view, err
}
