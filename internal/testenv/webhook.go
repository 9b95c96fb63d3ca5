package testenv

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Notification is what a shoutrrr generic webhook with template=json posts.
type Notification struct {
	Title   string `json:"title"`
	Message string `json:"message"`
}

// Webhook serves a loopback webhook for the test and returns the shoutrrr URL
// that reaches it (generic://…?template=json) and the notifications it got.
func Webhook(t testing.TB) (string, chan Notification) {
	t.Helper()
	got := make(chan Notification, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m Notification
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("webhook payload %q: %v", b, err)
		}
		got <- m
	}))
	t.Cleanup(srv.Close)
	return "generic://" + strings.TrimPrefix(srv.URL, "http://") + "/hook?template=json&disabletls=yes", got
}
