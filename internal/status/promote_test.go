package status_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vwstream/vwstream/internal/status"
)

// promoteServer serves a guarded POST /promote on a real loopback listener and
// counts the requests that got through, with their force flag.
func promoteServer(t *testing.T, token, tokenPath string) (addr string, calls, forced *atomic.Int32) {
	t.Helper()
	calls, forced = new(atomic.Int32), new(atomic.Int32)
	h, err := status.PromoteHandler("127.0.0.1:0", token, tokenPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Query().Get("force") == "true" {
			forced.Add(1)
		}
		w.Write([]byte("promoted\n"))
	}))
	if err != nil || h == nil {
		t.Fatalf("PromoteHandler = %v, %v", h, err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /promote", h)
	srv, err := status.Listen("127.0.0.1:0", mux, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv.Addr(), calls, forced
}

func post(t *testing.T, addr string, header map[string]string, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, status.PromoteURL(addr)+"?force=true", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Without the token, from a web page (a no-cors POST: an Origin and a
// text/plain body), or not as JSON, promote is refused and never reached;
// `vwstream promote`'s client, reading the token file, gets through.
func TestPromoteHandler_Refusals(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".vwstream-promote-token")
	addr, calls, forced := promoteServer(t, "", path)
	token, err := status.ReadPromoteToken(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v; want mode 0600", fi, err)
	}
	auth := "Bearer " + token
	for _, tc := range []struct {
		name   string
		header map[string]string
		body   string
		want   int
	}{
		{"no token", map[string]string{"Content-Type": "application/json"}, `{}`, http.StatusUnauthorized},
		{"wrong token", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer 0123456789abcdef0123"}, `{}`, http.StatusUnauthorized},
		{"browser no-cors", map[string]string{"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://evil.example"}, `{"force":true}`, http.StatusForbidden},
		{"browser with the token", map[string]string{"Content-Type": "application/json", "Origin": "null", "Authorization": auth}, `{}`, http.StatusForbidden},
		{"form post", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": auth}, `force=true`, http.StatusUnsupportedMediaType},
		{"no body", map[string]string{"Content-Type": "application/json", "Authorization": auth}, ``, http.StatusBadRequest},
	} {
		if got := post(t, addr, tc.header, tc.body); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	if calls.Load() != 0 {
		t.Fatalf("promote reached %d times by refused requests", calls.Load())
	}
	// The query's force=true does not count: only the authenticated body does.
	if got := post(t, addr, map[string]string{"Content-Type": "application/json", "Authorization": auth}, `{"force":false}`); got != http.StatusOK || forced.Load() != 0 {
		t.Fatalf("valid request: status %d, forced %d", got, forced.Load())
	}
	msg, err := status.Promote(t.Context(), addr, token, true)
	if err != nil || msg != "promoted" || calls.Load() != 2 || forced.Load() != 1 {
		t.Fatalf("Promote = %q, %v (calls %d, forced %d)", msg, err, calls.Load(), forced.Load())
	}
	if _, err := status.Promote(t.Context(), addr, "not-the-token-123456", false); err == nil || strings.Contains(err.Error(), token) {
		t.Fatalf("Promote with a wrong token: %v", err)
	}
}

// On a STATUS_ADDR other than loopback, promote without PROMOTE_TOKEN answers
// loopback peers only (vwstream promote on the host); with it, any peer that
// has the token.
func TestPromoteHandler_NonLoopback(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("promoted\n")) })
	request := func(h http.Handler, peer, token string) int {
		r := httptest.NewRequest(http.MethodPost, "/promote", strings.NewReader(`{}`))
		r.RemoteAddr = peer
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for _, addr := range []string{"0.0.0.0:8081", ":8081", "10.0.0.5:8081", "[::]:8081", "vault.example:8081"} {
		path := filepath.Join(t.TempDir(), "token")
		h, err := status.PromoteHandler(addr, "", path, ok)
		if err != nil {
			t.Fatal(err)
		}
		token, err := status.ReadPromoteToken(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := request(h, "10.0.0.9:40000", token); got != http.StatusForbidden {
			t.Errorf("%s without PROMOTE_TOKEN, from the network with the file's token: %d, want 403", addr, got)
		}
		if got := request(h, "127.0.0.1:40000", token); got != http.StatusOK {
			t.Errorf("%s without PROMOTE_TOKEN, from loopback: %d, want 200", addr, got)
		}
		const set = "a-long-promote-token-1234"
		h, err = status.PromoteHandler(addr, set, filepath.Join(t.TempDir(), "token"), ok)
		if err != nil {
			t.Fatal(err)
		}
		if got := request(h, "10.0.0.9:40000", set); got != http.StatusOK {
			t.Errorf("%s with PROMOTE_TOKEN, from the network: %d, want 200", addr, got)
		}
	}
	for _, addr := range []string{"127.0.0.1:8081", "[::1]:8081", "localhost:8081"} {
		if !status.LoopbackAddr(addr) {
			t.Errorf("LoopbackAddr(%s) = false", addr)
		}
	}
}

// A token file others may read is refused.
func TestReadPromoteToken_Mode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if _, err := status.EnsurePromoteToken(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := status.ReadPromoteToken(path); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Fatalf("ReadPromoteToken of a 0644 file: %v", err)
	}
}
