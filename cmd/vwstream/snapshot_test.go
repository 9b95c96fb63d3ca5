package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/testenv"
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

// BACKUP_SOURCES: extra folders (another container's volume with a dump in
// it) are in every snapshot under sources/<name>, readable with gpg and tar,
// and a restore gives them back byte for byte.
func TestSnapshot_ExtraSources(t *testing.T) {
	dir := t.TempDir()
	v, err := vaultsim.Create(filepath.Join(dir, "data"), vaultsim.Options{Seed: 5, Size: "small"})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	dumps, appdata := filepath.Join(dir, "volumes", "dumps"), filepath.Join(dir, "volumes", "app-data")
	want := map[string][]byte{
		"sources/dumps/app.sql":          []byte("CREATE TABLE t (x int);\nINSERT INTO t VALUES (1);\n"),
		"sources/app-data/nested/blob":   bytes.Repeat([]byte{0, 1, 2, 254, 255}, 300_000),
		"sources/app-data/settings.json": []byte(`{"k":"v"}`),
	}
	for name, b := range want {
		base := dumps
		if strings.HasPrefix(name, "sources/app-data/") {
			base = appdata
		}
		rel := strings.SplitN(name, "/", 3)[2]
		p := filepath.Join(base, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const pass = "sources passphrase"
	backup := filepath.Join(dir, "backup")
	env := []string{"LOG_LEVEL=error", "DATA_FOLDER=" + v.Dir, "LOCAL_TARGET=" + backup, "GPG_PASSPHRASE=" + pass,
		"BACKUP_SOURCES=" + dumps + "," + appdata}
	if code, out, stderr := invoke(t, env, "backup"); code != exitOK {
		t.Fatalf("backup: exit %d\n%s%s", code, out, stderr)
	}

	// The stock tools list them.
	archives, _ := filepath.Glob(filepath.Join(backup, "vaultwarden", "snapshots", "vaultwarden-2*.tar.gz.gpg"))
	if len(archives) != 1 {
		t.Fatalf("archives: %v", archives)
	}
	gpg := exec.Command(testenv.Tool(t, "gpg"), "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", pass, "--homedir", t.TempDir(), "-d", archives[0])
	tarList := exec.Command(testenv.Tool(t, "tar"), "-tzf", "-")
	pipe, err := gpg.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	tarList.Stdin = pipe
	if err := gpg.Start(); err != nil {
		t.Fatal(err)
	}
	listing, err := tarList.Output()
	if werr := gpg.Wait(); err != nil || werr != nil {
		t.Fatalf("gpg -d | tar -tz: %v %v", err, werr)
	}
	for name := range want {
		if !strings.Contains(string(listing), name+"\n") {
			t.Errorf("tar lists no %s:\n%s", name, listing)
		}
	}

	to := filepath.Join(dir, "restored")
	if code, out, stderr := invoke(t, env, "restore", "--snapshot", "latest", "--to", to); code != exitOK {
		t.Fatalf("restore: exit %d\n%s%s", code, out, stderr)
	}
	for name, b := range want {
		got, err := os.ReadFile(filepath.Join(to, filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("restored %s: %d bytes, %v; want the %d bytes written", name, len(got), err, len(b))
		}
	}

	// Two folders that would share a name in the snapshot: refused, naming the variable.
	clash := append(append([]string{}, env[:4]...), "BACKUP_SOURCES="+dumps+","+filepath.Join(dir, "other", "dumps"))
	if code, _, stderr := invoke(t, clash, "backup"); code != exitUsage || !strings.Contains(stderr, "BACKUP_SOURCES") {
		t.Fatalf("clashing sources: exit %d, %q", code, stderr)
	}
}
