package update_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vwstream/vwstream/internal/docker"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/update"
)

// faultProxy is a proxy in front of the Engine's socket that answers 500 to
// the first request matching fail, and passes everything else through.
func faultProxy(t *testing.T, fail *regexp.Regexp) (string, *atomic.Int32) {
	dir, err := os.MkdirTemp("", "vwupd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "engine.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var injected atomic.Int32
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.Out.URL.Scheme, r.Out.URL.Host = "http", "docker" },
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", testenv.DockerSocket)
		}},
		FlushInterval: -1,
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.MatchString(r.Method+" "+r.URL.Path) && injected.CompareAndSwap(0, 1) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"message":"injected fault"}`))
			return
		}
		proxy.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "unix://" + sock, &injected
}

// TestUpdate_EngineFaultKeepsOldRunning: an Engine error at each step after
// the old container is stopped still ends with the old container back under
// its name, running and healthy, and no new container left.
func TestUpdate_EngineFaultKeepsOldRunning(t *testing.T) {
	r := newRig(t)
	ref := r.push("app", "1")
	name := r.run("app", ref, "--label", "vwstream.update=true")
	r.push("app", "2")
	for _, step := range []string{
		`^POST /v[0-9.]+/containers/[^/]+/rename$`,
		`^POST /v[0-9.]+/containers/create$`,
		`^POST /v[0-9.]+/containers/[^/]+/start$`,
	} {
		old := r.inspect(name)
		host, injected := faultProxy(t, regexp.MustCompile(step))
		c, err := docker.New(t.Context(), host)
		if err != nil {
			t.Fatal(err)
		}
		o := r.options()
		o.Docker = c
		it, _ := r.pass(o, name)
		c.Close()
		if injected.Load() != 1 {
			t.Fatalf("%s: no fault injected: %+v", step, it)
		}
		if it.Action != update.ActionRolledBack || !strings.Contains(it.Error, "injected fault") {
			t.Errorf("%s: %+v", step, it)
		}
		cur := r.inspect(name)
		if cur.ID != old.ID || !cur.State.Running {
			t.Fatalf("%s: the old container is not back: %+v", step, cur.State)
		}
		r.waitHealthy(name)
		r.gone(name + update.AsideSuffix)
		if out := testenv.DockerRun(t, "ps", "-aq", "--filter", "name="+name); strings.Count(out, "\n") != 0 {
			t.Errorf("%s: containers left: %s", step, out)
		}
	}
}
