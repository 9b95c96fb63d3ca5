package vaultsim_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/vaultsim"
)

func TestServe_Alive(t *testing.T) {
	v := createVault(t, vaultsim.Options{Seed: 13})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithCancel(t)
	done := make(chan error, 1)
	go func() { done <- vaultsim.ServeListener(ctx, ln, v) }()
	url := "http://" + ln.Addr().String() + "/alive"

	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var s string
	if resp.StatusCode != 200 || json.Unmarshal(body, &s) != nil {
		t.Fatalf("GET /alive: %d %q; want 200 and a JSON string", resp.StatusCode, body)
	}
	if at, err := time.Parse(time.RFC3339Nano, s); err != nil || time.Since(at).Abs() > time.Minute {
		t.Fatalf("GET /alive: %q is not the current time (%v)", s, err)
	}
	if resp, err := http.Head(url); err != nil || resp.StatusCode != 200 {
		t.Fatalf("HEAD /alive: %v %v", resp, err)
	}
	if resp, err := http.Post(url, "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /alive: %v %v; want 405", resp, err)
	}
	// Like Vaultwarden, /alive fails when the database does.
	v.Close()
	if resp, err := http.Get(url); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("GET /alive with the database closed: %v %v; want 503", resp, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}
