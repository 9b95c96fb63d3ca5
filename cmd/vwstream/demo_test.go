package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo_ProtectsAndRestores runs the README's first command, shortened: the
// demo vault is written to, protected into the local folder, restored and
// checked against the ledger of committed transactions.
func TestDemo_ProtectsAndRestores(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	env := []string{"LOG_LEVEL=error", "STATUS_ADDR=off", "STATUS_FILE=" + filepath.Join(t.TempDir(), "status.json")}
	code, out, stderr := invoke(t, env, "demo", "--dir", dir, "--duration", "3s", "--rate", "30")
	if code != exitOK {
		t.Fatalf("demo: exit %d\n%s%s", code, out, stderr)
	}
	for _, want := range []string{"committed", "replica at txid", "all ", "committed transactions of the ledger are in the restored copy", "every attachment row has its file"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// A second run continues the same vault and backup.
	if code, out, stderr := invoke(t, env, "demo", "--dir", dir, "--duration", "1s"); code != exitOK {
		t.Fatalf("second demo: exit %d\n%s%s", code, out, stderr)
	}
}
