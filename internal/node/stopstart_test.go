package node_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/node"
	"github.com/vwstream/vwstream/internal/testenv"
)

// A stop asked for while the node is still starting (SIGTERM during a long
// start-up restore) ends Run without an error: it is a stop, not a failed
// start. Here the store stops answering once the node looks at db/.
func TestNode_StopDuringStartIsNoFailure(t *testing.T) {
	s := testenv.NewS3(t)
	target, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan struct{}, 1)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.RawQuery, "db%2F") || strings.Contains(r.URL.Path, "/db/") {
			select {
			case held <- struct{}{}:
			default:
			}
			<-r.Context().Done() // never answers
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()

	cfg := s3Config(t, s, t.TempDir())
	cfg.S3.Endpoint = proxy.URL
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- node.New(node.Options{Config: cfg, Logger: testLogger(t)}).Run(ctx) }()
	select {
	case <-held:
	case err := <-done:
		t.Fatalf("run ended before it read the replica: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the node never asked for db/")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stop during start-up: Run = %v, want nil", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after the stop")
	}
}
