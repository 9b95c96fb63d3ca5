package main

import (
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/vault"
)

// `vwstream promote` works as before for the user: it finds the token the
// node keeps in the data folder (or PROMOTE_TOKEN) and gets through the guard
// of POST /promote; the token never shows in its output.
func TestPromote_UsesToken(t *testing.T) {
	dataDir := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	var force []bool
	promote := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		force = append(force, r.URL.Query().Get("force") == "true")
		w.Write([]byte("promoted: this node is now the primary\n"))
	})
	h, err := status.PromoteHandler(addr, "", filepath.Join(dataDir, vault.PromoteTokenFile), promote)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /promote", h)
	srv, err := status.Listen(addr, mux, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	token, err := status.ReadPromoteToken(filepath.Join(dataDir, vault.PromoteTokenFile))
	if err != nil {
		t.Fatal(err)
	}

	env := []string{"STATUS_ADDR=" + addr, "DATA_FOLDER=" + dataDir}
	code, stdout, stderr := invoke(t, env, "promote", "--force")
	if code != exitOK || !strings.Contains(stdout, "now the primary") || len(force) != 1 || !force[0] {
		t.Fatalf("promote --force: exit %d, force %v\nstdout: %s\nstderr: %s", code, force, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, token) {
		t.Fatal("promote printed the token")
	}
	// With another data folder (no token file) and no PROMOTE_TOKEN: one line, exit 1.
	code, _, stderr = invoke(t, []string{"STATUS_ADDR=" + addr, "DATA_FOLDER=" + t.TempDir()}, "promote")
	last := stderr[strings.LastIndex(strings.TrimSuffix(stderr, "\n"), "\n")+1:]
	if code != exitFailure || !strings.HasPrefix(last, "vwstream promote: promote token: ") || !strings.Contains(last, "PROMOTE_TOKEN") {
		t.Fatalf("promote without a token: exit %d, stderr %q", code, stderr)
	}
	// A wrong PROMOTE_TOKEN is refused by the node.
	code, _, stderr = invoke(t, append(env, "PROMOTE_TOKEN=wrong-token-0123456789"), "promote")
	if code != exitFailure || !strings.Contains(stderr, "wrong token") || len(force) != 1 {
		t.Fatalf("promote with a wrong token: exit %d, stderr %q", code, stderr)
	}
}
