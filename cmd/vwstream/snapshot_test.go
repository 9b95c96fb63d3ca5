package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/vaultsim"
)

// TestSnapshot_BackupListRestore drives the snapshot commands as a user would:
// backup, snapshots --json, restore --snapshot latest; then a wrong passphrase
// is one line and leaves the folder alone.
func TestSnapshot_BackupListRestore(t *testing.T) {
	dir := t.TempDir()
	v, err := vaultsim.Create(filepath.Join(dir, "data"), vaultsim.Options{Seed: 4, Size: "small"})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	const pass = "snapshot passphrase S3CR3T"
	env := []string{"LOG_LEVEL=error", "DATA_FOLDER=" + v.Dir, "LOCAL_TARGET=" + filepath.Join(dir, "backup"), "GPG_PASSPHRASE=" + pass}

	code, out, stderr := invoke(t, env, "backup", "--json")
	if code != exitOK {
		t.Fatalf("backup: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = invoke(t, env, "snapshots", "--json")
	if code != exitOK || !strings.Contains(out, ".tar.gz.gpg") {
		t.Fatalf("snapshots: exit %d\n%s%s", code, out, stderr)
	}
	if !json.Valid([]byte(out)) {
		t.Fatalf("snapshots --json is not JSON:\n%s", out)
	}

	to := filepath.Join(dir, "restored")
	code, out, stderr = invoke(t, env, "restore", "--snapshot", "latest", "--to", to)
	if code != exitOK {
		t.Fatalf("restore: exit %d\n%s%s", code, out, stderr)
	}
	for _, f := range []string{"db.sqlite3", "config.json", "rsa_key.pem"} {
		if _, err := os.Stat(filepath.Join(to, f)); err != nil {
			t.Errorf("restored folder lacks %s: %v", f, err)
		}
	}

	// A wrong passphrase: exit 1, one line, nothing of the target touched.
	before, _ := os.ReadFile(filepath.Join(to, "config.json"))
	bad := append(append([]string{}, env[:3]...), "GPG_PASSPHRASE=wrong S3CR3T")
	code, out, stderr = invoke(t, bad, "restore", "--snapshot", "latest", "--to", to, "--force")
	if code != exitFailure || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("wrong passphrase: exit %d, stderr %q", code, stderr)
	}
	if strings.Contains(out+stderr, "S3CR3T") {
		t.Errorf("output shows a passphrase: %s%s", out, stderr)
	}
	after, _ := os.ReadFile(filepath.Join(to, "config.json"))
	if string(before) != string(after) || len(after) == 0 {
		t.Errorf("a failed restore changed the folder")
	}
}
