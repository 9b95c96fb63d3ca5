package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/testenv"
)

// rekey re-wraps the bucket key with the new passphrase, only when the current
// one opens it; the stock age CLI then opens the key with the new passphrase
// and not with the old, and the key inside is the same.
func TestRekey(t *testing.T) {
	const old, fresh, wrong = "S3CR3T-old-passphrase", "S3CR3T-new-passphrase", "S3CR3T-not-the-passphrase"
	dir := t.TempDir()
	backup := filepath.Join(dir, "backup")
	store, err := objstore.NewLocal(filepath.Join(backup, "vaultwarden"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := seal.CreateKey(context.Background(), store, old, seal.KeyOptions{WorkFactor: 10})
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(store.Root(), filepath.FromSlash(layout.KeyPath))
	before, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"LOG_LEVEL=error", "DATA_FOLDER=" + filepath.Join(dir, "data"), "LOCAL_TARGET=" + backup}

	// Bad input: nothing changes.
	code, _, stderr := invoke(t, append(env, "ENCRYPTION_PASSPHRASE="+old), "rekey")
	if code != exitUsage || !strings.Contains(stderr, "NEW_ENCRYPTION_PASSPHRASE") {
		t.Fatalf("rekey without the new passphrase: exit %d, %q", code, stderr)
	}
	code, out, stderr := invoke(t, append(env, "ENCRYPTION_PASSPHRASE="+wrong, "NEW_ENCRYPTION_PASSPHRASE="+fresh), "rekey")
	if code != exitFailure || !strings.Contains(stderr, "wrong passphrase") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("rekey with a wrong current passphrase: exit %d, %q", code, stderr)
	}
	if strings.Contains(out+stderr, wrong) || strings.Contains(out+stderr, fresh) {
		t.Fatalf("output shows a passphrase:\n%s%s", out, stderr)
	}
	if after, _ := os.ReadFile(keyFile); !bytes.Equal(after, before) {
		t.Fatal("a refused rekey changed the key object")
	}

	newFile := filepath.Join(dir, "new-passphrase")
	if err := os.WriteFile(newFile, []byte(fresh+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = invoke(t, append(env, "ENCRYPTION_PASSPHRASE="+old, "NEW_ENCRYPTION_PASSPHRASE_FILE="+newFile), "rekey", "--json")
	if code != exitOK || !strings.Contains(out, key.Recipient()) {
		t.Fatalf("rekey: exit %d\n%s%s", code, out, stderr)
	}
	if strings.Contains(out+stderr, old) || strings.Contains(out+stderr, fresh) {
		t.Fatalf("output shows a passphrase:\n%s%s", out, stderr)
	}

	// The stock age CLI: the new passphrase opens the same identity, the old no longer does.
	identity := filepath.Join(dir, "identity.txt")
	if output, err := testenv.AgeDecryptPassphrase(t, keyFile, identity, fresh); err != nil {
		t.Fatalf("age -d with the new passphrase: %v\n%s", err, output)
	}
	got, err := os.ReadFile(identity)
	if err != nil {
		t.Fatal(err)
	}
	var line string // the identity file also holds # comments
	for _, l := range strings.Split(string(got), "\n") {
		if strings.HasPrefix(l, "AGE-SECRET-KEY-") {
			line = l
		}
	}
	parsed, err := seal.ParseKey(line)
	if err != nil || parsed.Recipient() != key.Recipient() {
		t.Fatalf("the re-wrapped key is %v (%v), want the same key %s", parsed, err, key.Recipient())
	}
	if output, err := testenv.AgeDecryptPassphrase(t, keyFile, filepath.Join(dir, "old.txt"), old); err == nil {
		t.Fatalf("age -d with the old passphrase still opens the key\n%s", output)
	}
}
