package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/status"
)

func TestStatus_Sources(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sync-status.json")
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	env := []string{"STATUS_ADDR=" + addr, "STATUS_FILE=" + path}

	// Neither: exit 1 and one line naming both.
	code, _, stderr := invoke(t, env, "status")
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, addr) || !strings.Contains(stderr, path) {
		t.Fatalf("no source: exit %d, stderr %q", code, stderr)
	}

	// The file, as text and as JSON.
	now := time.Now()
	doc := healthyDoc(now)
	doc.Errors = []string{"notify: 401 Unauthorized"}
	if err := status.WriteFile(path, doc); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := invoke(t, env, "status")
	if code != 0 || stderr != "" {
		t.Fatalf("from file: exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"ok (primary)", "from " + path, "txid 5 local, 5 replicated", "held by this node", "running (pid 1)", "notify: 401 Unauthorized"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary does not contain %q:\n%s", want, out)
		}
	}
	code, out, _ = invoke(t, env, "status", "--json")
	var got status.Status
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || got.Timestamp != doc.Timestamp {
		t.Fatalf("--json: exit %d, %v:\n%s", code, err, out)
	}

	// A running daemon is preferred over the file.
	b := status.NewBoard(status.Options{Role: "secondary"})
	srv, err := status.Listen(addr, status.NewHandler(b, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	code, out, _ = invoke(t, env, "status", "--json")
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || got.Role != "secondary" {
		t.Fatalf("--json with the daemon up: exit %d, %v:\n%s", code, err, out)
	}
}
