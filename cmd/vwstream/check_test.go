package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/preflight"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// s3Env is the environment that points vwstream at the test server's bucket.
func s3Env(s testenv.S3, bucket, secret string) []string {
	return []string{
		"S3_BUCKET=" + bucket,
		"S3_ENDPOINT=" + s.Endpoint,
		"S3_REGION=" + s.Region,
		"S3_ACCESS_KEY_ID=" + s.AccessKey,
		"S3_SECRET_ACCESS_KEY=" + secret,
		"S3_PROVIDER=Other",
	}
}

// lineWith returns the checklist line of the named item, or "".
func lineWith(out, item string) string {
	for _, l := range strings.Split(out, "\n") {
		if len(l) > 6 && strings.HasPrefix(l[6:], item+" ") {
			return l
		}
	}
	return ""
}

func TestCheck_LocalTargetPasses(t *testing.T) {
	dir := t.TempDir()
	v, err := vaultsim.Create(filepath.Join(dir, "data"), vaultsim.Options{Seed: 1, Size: "small"})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	env := []string{"LOG_LEVEL=error", "DATA_FOLDER=" + v.Dir, "LOCAL_TARGET=" + filepath.Join(dir, "backup")}
	code, out, stderr := invoke(t, env, "check")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	if l := lineWith(out, "database"); !strings.Contains(l, "WAL mode") {
		t.Errorf("database line %q does not say WAL mode", l)
	}
	if !strings.Contains(out, "all checks passed") {
		t.Errorf("no verdict:\n%s", out)
	}
	// The probe cleans up after itself.
	entries, _ := os.ReadDir(filepath.Join(dir, "backup", "vaultwarden", strings.TrimSuffix(preflight.ProbePrefix, "/")))
	if len(entries) != 0 {
		t.Errorf("probe objects left behind: %v", entries)
	}
}

func TestCheck_Failures(t *testing.T) {
	s := testenv.NewS3(t)
	const secretMark = "S3CR3T-check-wrong"
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	notDB := filepath.Join(dir, "data2")
	if err := os.MkdirAll(notDB, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(notDB, "db.sqlite3"), []byte("hello, not a database at all, not at all........................................................................."), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"LOG_LEVEL=error", "ALLOW_UNENCRYPTED=true"}
	for _, tc := range []struct {
		name  string
		env   []string
		item  string // the checklist line that must fail
		words []string
	}{
		{"data folder missing", append(s3Env(s, s.Bucket, s.SecretKey), "DATA_FOLDER="+filepath.Join(dir, "nope")), "data folder", []string{"does not exist"}},
		{"not a database", append(s3Env(s, s.Bucket, s.SecretKey), "DATA_FOLDER="+notDB), "database", []string{"not an SQLite database"}},
		{"missing bucket", append(s3Env(s, "no-such-bucket-vw", s.SecretKey), "DATA_FOLDER="+data), "target", []string{"no-such-bucket-vw", "does not exist"}},
		{"wrong secret key", append(s3Env(s, s.Bucket, secretMark), "DATA_FOLDER="+data), "target", []string{"S3_SECRET_ACCESS_KEY"}},
		{"unreachable endpoint", append([]string{"S3_BUCKET=b", "S3_ENDPOINT=http://127.0.0.1:1", "S3_ACCESS_KEY_ID=id", "S3_SECRET_ACCESS_KEY=" + secretMark}, "DATA_FOLDER="+data), "target", []string{"cannot reach http://127.0.0.1:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, out, stderr := invoke(t, append(append([]string{}, base...), tc.env...), "check")
			if code != exitFailure {
				t.Fatalf("exit %d, want %d\n%s%s", code, exitFailure, out, stderr)
			}
			if time.Since(start) > 30*time.Second {
				t.Errorf("check took %s", time.Since(start))
			}
			l := lineWith(out, tc.item)
			if !strings.HasPrefix(l, "FAIL") {
				t.Fatalf("line for %q is %q, want FAIL\n%s", tc.item, l, out)
			}
			for _, w := range tc.words {
				if !strings.Contains(l, w) {
					t.Errorf("line %q does not mention %q", l, w)
				}
			}
			if strings.Contains(out+stderr, secretMark) {
				t.Errorf("output shows the secret key:\n%s%s", out, stderr)
			}
		})
	}
}

func TestCheck_BucketKey(t *testing.T) {
	s := testenv.NewS3(t)
	const pass, wrong = "correct horse battery", "S3CR3T-wrong-passphrase"
	ctx := context.Background()
	store, err := objstore.NewS3(ctx, objstore.S3Options{Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket,
		Prefix: "vaultwarden", AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey, ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	env := append(s3Env(s, s.Bucket, s.SecretKey), "LOG_LEVEL=error", "DATA_FOLDER="+data)

	// No key yet: passes and says the first run creates it.
	code, out, _ := invoke(t, append(env, "ENCRYPTION_PASSPHRASE="+pass), "check")
	if code != exitOK || !strings.Contains(lineWith(out, "encryption"), "first run creates") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if _, err := seal.CreateKey(ctx, store, pass, seal.KeyOptions{WorkFactor: 10}); err != nil {
		t.Fatal(err)
	}
	code, out, _ = invoke(t, append(env, "ENCRYPTION_PASSPHRASE="+pass), "check")
	if code != exitOK || !strings.Contains(lineWith(out, "encryption"), "opens the bucket key") {
		t.Fatalf("right passphrase: exit %d\n%s", code, out)
	}
	code, out, stderr := invoke(t, append(env, "ENCRYPTION_PASSPHRASE="+wrong), "check")
	if l := lineWith(out, "encryption"); code != exitFailure || !strings.HasPrefix(l, "FAIL") || !strings.Contains(l, "wrong passphrase") {
		t.Fatalf("wrong passphrase: exit %d, line %q", code, l)
	}
	if strings.Contains(out+stderr, wrong) {
		t.Errorf("output shows the passphrase:\n%s%s", out, stderr)
	}

	// The key given directly: another key is refused, naming only public keys.
	other, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	code, out, stderr = invoke(t, append(env, "ENCRYPTION_KEY="+other.String()), "check")
	if l := lineWith(out, "encryption"); code != exitFailure || !strings.Contains(l, "not this bucket's key") || !strings.Contains(l, other.Recipient().String()) {
		t.Fatalf("another bucket key: exit %d, line %q", code, l)
	}
	if strings.Contains(out+stderr, other.String()) {
		t.Errorf("output shows the key:\n%s%s", out, stderr)
	}
}

// check and run apply one key policy: a prefix whose only sealed objects are
// file sync's trash (the database and files deleted) gets no new key from
// either, since the key that sealed the trash could not be replaced.
func TestCheck_TrashOnlyPrefixAgreesWithRun(t *testing.T) {
	dir := t.TempDir()
	backup := filepath.Join(dir, "backup")
	trashed := filepath.Join(backup, "vaultwarden", "trash", "files", "config.json@1700000000")
	if err := os.MkdirAll(filepath.Dir(trashed), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trashed, []byte("age-encryption.org/v1 sealed, its key is gone"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"LOG_LEVEL=error", "DATA_FOLDER=" + filepath.Join(dir, "data"), "LOCAL_TARGET=" + backup,
		"ENCRYPTION_PASSPHRASE=trash only passphrase", "STATUS_ADDR=", "STATUS_FILE="}

	code, out, _ := invoke(t, env, "check")
	if l := lineWith(out, "encryption"); code != exitFailure || !strings.HasPrefix(l, "FAIL") || !strings.Contains(l, "trash/") {
		t.Fatalf("check on a trash-only prefix: exit %d, encryption line %q; want FAIL naming trash/\n%s", code, l, out)
	}
	code, _, stderr := invoke(t, env, "run")
	if code != exitFailure || !strings.Contains(stderr, "no bucket key") {
		t.Fatalf("run on a trash-only prefix: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(backup, "vaultwarden", "keys")); !os.IsNotExist(err) {
		t.Fatalf("a key was created beside sealed trash: %v", err)
	}
}
