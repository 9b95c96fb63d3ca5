package notify_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/vwstream/vwstream/internal/notify"
)

type ping struct{ method, path, body string }

// A job that succeeds pings /start then the URL; one that fails pings /start
// then /fail with its error, scrubbed of URLs, as the body.
func TestPinger_Around(t *testing.T) {
	var (
		mu  sync.Mutex
		got []ping
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, ping{r.Method, r.URL.Path, string(b)})
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	p := notify.NewPinger(srv.URL+"/ping/0b1c-uuid/", nil)
	if err := p.Around(t.Context(), "snapshot", func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	jobErr := errors.New("upload to https://key:secret@s3.example.com/bucket failed: 503")
	if err := p.Around(t.Context(), "snapshot", func() error { return jobErr }); err != jobErr {
		t.Fatalf("Around returned %v, want the job's error", err)
	}
	want := []ping{{"POST", "/ping/0b1c-uuid/start", ""}, {"POST", "/ping/0b1c-uuid", ""},
		{"POST", "/ping/0b1c-uuid/start", ""}, {"POST", "/ping/0b1c-uuid/fail", "upload to <url> failed: 503"}}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("pings %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ping %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// A switch that cannot be reached does not fail the job, and its log line
// does not hold the URL (a capability).
func TestPinger_DownHidesURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL + "/ping/secret-uuid-42"
	srv.Close()
	var log bytes.Buffer
	p := notify.NewPinger(u, slog.New(slog.NewTextHandler(&log, nil)))
	if err := p.Around(context.Background(), "drill", func() error { return nil }); err != nil {
		t.Fatalf("Around = %v; a dead switch must not fail the job", err)
	}
	if !strings.Contains(log.String(), "not pinged") {
		t.Errorf("no log line for the failed ping: %s", log.String())
	}
	if strings.Contains(log.String(), "secret-uuid-42") || strings.Contains(log.String(), srv.URL) {
		t.Errorf("the log holds the ping URL: %s", log.String())
	}
	var nilPinger *notify.Pinger
	ran := false
	if err := nilPinger.Around(context.Background(), "drill", func() error { ran = true; return nil }); err != nil || !ran {
		t.Errorf("a nil pinger must just run the job: ran=%v err=%v", ran, err)
	}
}
