package testenv

import (
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Registry starts an image registry on loopback (go-containerregistry's
// `crane registry serve`, from VWSTREAM_TEST_CRANE or PATH; images kept in
// memory) for the test and returns its host:port. The Engine treats
// 127.0.0.0/8 registries as insecure, so `docker push` reaches it over HTTP.
func Registry(t testing.TB) string {
	t.Helper()
	crane := os.Getenv("VWSTREAM_TEST_CRANE")
	if crane == "" {
		crane = Tool(t, "crane")
	}
	addr := FreeAddr(t)
	srv := exec.Command(crane, "registry", "serve", "--address", addr)
	if err := srv.Start(); err != nil {
		t.Fatalf("crane registry serve: %v", err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			return addr
		}
		if i > 100 {
			t.Fatalf("registry on %s does not answer: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
