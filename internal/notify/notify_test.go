package notify_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/notify"
	"github.com/vwstream/vwstream/internal/testenv"
)

type received = testenv.Notification

func hook(t *testing.T) (string, chan received) { return testenv.Webhook(t) }

var failed = notify.Event{Kind: "snapshot", Name: "vaultwarden-20250101-000000.tar.gz.gpg", Size: 3 << 20,
	Duration: 1500 * time.Millisecond, Error: "destination offsite:vw: dial tcp: connection refused",
	Destinations: []notify.Outcome{{Name: "target", OK: true}, {Name: "offsite:vw", Error: "connection refused"}}}

// A failed snapshot reaches a generic webhook with its name, size, duration
// and per-destination outcome in the body.
func TestService_NotifyWebhook(t *testing.T) {
	u, got := hook(t)
	s, err := notify.New(notify.Options{URLs: []string{u}, Level: notify.LevelError})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Notify(t.Context(), failed); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	select {
	case m := <-got:
		for _, want := range []string{failed.Name, "3.0 MiB", "1.5s", "offsite:vw: FAILED", "target: ok"} {
			if !strings.Contains(m.Message, want) {
				t.Errorf("body %q lacks %q", m.Message, want)
			}
		}
		if !strings.Contains(m.Title, "FAILED") {
			t.Errorf("title %q lacks FAILED", m.Title)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification arrived")
	}
}

// At level error a successful, complete snapshot is not sent; at info it is;
// a degraded one is sent at error too.
func TestService_NotifyLevel(t *testing.T) {
	u, got := hook(t)
	ok := notify.Event{Kind: "snapshot", OK: true, Name: "n"}
	s, _ := notify.New(notify.Options{URLs: []string{u}, Level: notify.LevelError, Title: "T {{.Name}}", Body: "degraded={{.Degraded}}"})
	if err := s.Notify(t.Context(), ok); err != nil {
		t.Fatal(err)
	}
	deg := ok
	deg.Degraded = true
	if err := s.Notify(t.Context(), deg); err != nil {
		t.Fatal(err)
	}
	if m := <-got; m.Message != "degraded=true" || m.Title != "T n" {
		t.Fatalf("got %+v, want the degraded event with the custom templates", m)
	}
	info, _ := notify.New(notify.Options{URLs: []string{u}, Level: notify.LevelInfo})
	if err := info.Notify(t.Context(), ok); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("info level did not send a success")
	}
	select {
	case m := <-got:
		t.Fatalf("unexpected extra notification %+v", m)
	default:
	}
}

// A notifier that cannot reach its service returns an error that names the
// scheme but not the URL or its token.
func TestService_NotifyFailureHidesURL(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	secret := "s3cr3t-token"
	u := "generic://" + addr + "/hook/" + secret + "?template=json&disabletls=yes&@Authorization=Bearer+" + secret
	s, err := notify.New(notify.Options{URLs: []string{u}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Notify(t.Context(), failed)
	if err == nil {
		t.Fatal("Notify to a closed port succeeded")
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), addr) {
		t.Fatalf("error shows the URL: %v", err)
	}
	if !strings.Contains(err.Error(), "generic") {
		t.Fatalf("error %q does not name the scheme", err)
	}
}

// Events of the node itself (a failed flush, a refused deletion, a lost lease)
// render as their error, not as a snapshot report.
func TestService_RenderNodeEvent(t *testing.T) {
	s, err := notify.New(notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	title, body, err := s.Render(notify.Event{Kind: "shutdown", Error: "final replication flush: transactions 5..9 not uploaded"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(title, "shutdown FAILED") || !strings.Contains(body, "transactions 5..9 not uploaded") || strings.Contains(body, "Snapshot") {
		t.Fatalf("title %q body %q", title, body)
	}
}

// A snapshot's notification lists the containers stopped for it, with their
// stop window and whether they came back.
func TestService_RenderContainers(t *testing.T) {
	s, err := notify.New(notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, body, err := s.Render(notify.Event{Kind: "snapshot", Name: "vw-1", Error: "after capture: start container db: boom",
		Containers: []notify.Container{{Name: "vaultwarden", Seconds: 1.25, Restarted: true}, {Name: "db", Seconds: 3, Error: "boom"}, {Name: "once", Seconds: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"- container vaultwarden: stopped 1.2 s, restarted", "- container db: stopped 3.0 s, NOT RESTARTED: boom",
		"- container once: stopped 2.0 s, left stopped (no-restart label)"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
}
