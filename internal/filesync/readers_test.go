package filesync_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// Unencrypted, Debian's rclone finds the bucket's files/ identical, byte for
// byte, to the synced part of the data folder.
func TestSyncer_S3_RcloneCheck(t *testing.T) {
	rclone := testenv.Tool(t, "rclone")
	env := testenv.NewS3(t)
	dir := newVault(t, vaultsim.Options{Seed: 20})
	start := time.Now()
	s := open(t, fastOptions(dir, newS3(t, env, "")))
	waitIdle(t, s, start)

	args := []string{"check", "--download", dir, "x:" + env.Bucket + "/vw/files"}
	for _, in := range includesOf(dir) {
		pat := "/" + in.Name
		if in.Dir {
			pat += "/**"
		}
		args = append(args, "--include", pat)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, rclone, args...)
	cmd.Env = append(rcloneEnv(),
		"RCLONE_CONFIG_X_TYPE=s3", "RCLONE_CONFIG_X_PROVIDER=Other",
		"RCLONE_CONFIG_X_ENDPOINT="+env.Endpoint, "RCLONE_CONFIG_X_REGION="+env.Region,
		"RCLONE_CONFIG_X_ACCESS_KEY_ID="+env.AccessKey, "RCLONE_CONFIG_X_SECRET_ACCESS_KEY="+env.SecretKey,
		"RCLONE_CONFIG_X_FORCE_PATH_STYLE=true", "RCLONE_CONFIG=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rclone check: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "0 differences found") {
		t.Fatalf("rclone check output:\n%s", out)
	}
	t.Logf("rclone: %s", bytes.TrimSpace(out))
}

// With a key, every object decrypts with the stock age CLI (the bucket key
// unwrapped with the passphrase at age's prompt) to the bytes of its file.
func TestSyncer_S3_AgeCLI(t *testing.T) {
	ageBin := testenv.Tool(t, "age")
	script := testenv.Tool(t, "script")
	env := testenv.NewS3(t)
	plain := newS3(t, env, "")
	const passphrase = "file sync passphrase"
	key, err := seal.LoadOrCreateKey(t.Context(), plain, passphrase, seal.KeyOptions{WorkFactor: 10})
	if err != nil {
		t.Fatal(err)
	}
	dir := newVault(t, vaultsim.Options{Seed: 21})
	start := time.Now()
	s := open(t, fastOptions(dir, seal.NewStore(plain, key)))
	waitIdle(t, s, start)

	work := t.TempDir()
	wrapped, err := rawGet(t, env, "vw/"+layout.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	wrappedPath, idPath := filepath.Join(work, "key.age"), filepath.Join(work, "id.txt")
	writeFile(t, wrappedPath, wrapped)
	// age reads passphrases only from a terminal: script(1) gives it one.
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	cmd := exec.CommandContext(t.Context(), script, "-qec", strings.Join([]string{q(ageBin), "-d", "-o", q(idPath), q(wrappedPath)}, " "), "/dev/null")
	cmd.Stdin = strings.NewReader(passphrase + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("age -d bucket key: %v\n%s", err, out)
	}

	want := syncedFiles(t, dir)
	keys := bucketKeys(t, env, "vw/files/")
	if len(keys) != len(want) {
		t.Fatalf("bucket holds %d objects, want %d", len(keys), len(want))
	}
	for i, k := range keys {
		sealed, err := rawGet(t, env, k)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(sealed, want[strings.TrimPrefix(k, "vw/")]) {
			t.Fatalf("%s is stored in plaintext", k)
		}
		in, out := filepath.Join(work, "obj"), filepath.Join(work, "out")
		writeFile(t, in, sealed)
		os.Remove(out)
		if o, err := exec.CommandContext(t.Context(), ageBin, "-d", "-i", idPath, "-o", out, in).CombinedOutput(); err != nil {
			t.Fatalf("age -d %s: %v\n%s", k, err, o)
		}
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, want[strings.TrimPrefix(k, "vw/")]) {
			t.Fatalf("object %d %s: age output %d bytes (%v), want the file's %d", i, k, len(got), err, len(want[strings.TrimPrefix(k, "vw/")]))
		}
	}
}

// rcloneEnv is the environment without AWS_CA_BUNDLE, which rclone 1.60's S3
// backend cannot combine with its own HTTP transport (the endpoint is plain http).
func rcloneEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_CA_BUNDLE=") {
			env = append(env, kv)
		}
	}
	return env
}
