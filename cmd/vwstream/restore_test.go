package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/vwstream/vwstream/internal/bucket"
	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// restorePassphrase is the fixtures' replica passphrase; no output may show it.
const restorePassphrase = "restore-test-passphrase-7f3a91"

// replicaFixture replicates a small vault into the test bucket under the
// default prefix, sealed or not, and returns the environment that points
// vwstream at it. The bucket key is wrapped with a cheap work factor.
func replicaFixture(t *testing.T, s testenv.S3, sealed bool) []string {
	t.Helper()
	ctx := context.Background()
	env := append(s3Env(s, s.Bucket, s.SecretKey), "DATA_FOLDER="+t.TempDir())
	if sealed {
		env = append(env, "ENCRYPTION_PASSPHRASE="+restorePassphrase)
	} else {
		env = append(env, "ALLOW_UNENCRYPTED=true")
	}
	cfg, err := config.Load(nil, env, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := bucket.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sealed {
		if _, err := seal.CreateKey(ctx, plain, restorePassphrase, seal.KeyOptions{WorkFactor: 10}); err != nil {
			t.Fatal(err)
		}
	}
	data, err := bucket.Data(ctx, plain, cfg, bucket.ReadKey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vaultsim.Create(filepath.Join(t.TempDir(), "source"), vaultsim.Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	r, err := dbrepl.New(dbrepl.Options{DBPath: v.DBPath(), Store: data, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// A few uploads, so the replica holds more than its first file.
	for i := range 3 {
		w := vaultsim.NewWorkload(v, vaultsim.WorkloadOptions{Rate: -1, Count: 10, Seed: int64(i + 1), AttachmentRatio: -1, SendRatio: -1})
		if _, err := w.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return env
}

// withEnv returns env with each NAME=value of set replacing the variable of
// that name (config.Load takes the first of duplicate names).
func withEnv(env []string, set ...string) []string {
	out := append([]string{}, set...)
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		replaced := false
		for _, s := range set {
			if strings.HasPrefix(s, name+"=") {
				replaced = true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// objectKey is the bucket key of an object below the default prefix.
func objectKey(rel string) string { return "vaultwarden/" + rel }

// restoreBase returns the bucket key of the LTX object every restore starts
// from: the snapshot (level 9) when litestream wrote one, which it prefers,
// else the largest level-0 file (the first transaction holds the database).
func restoreBase(t *testing.T, s testenv.S3) string {
	t.Helper()
	out, err := s.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &s.Bucket, Prefix: new(objectKey("db/"))})
	if err != nil {
		t.Fatal(err)
	}
	var key string
	var size int64 = -1
	for _, o := range out.Contents {
		if !strings.HasSuffix(*o.Key, ".ltx") {
			continue
		}
		if strings.HasPrefix(*o.Key, objectKey("db/0009/")) {
			return *o.Key
		}
		if *o.Size > size {
			key, size = *o.Key, *o.Size
		}
	}
	if key == "" {
		t.Fatal("no LTX object under db/")
	}
	return key
}

// rewriteObject replaces an object's bytes behind vwstream's back.
func rewriteObject(t *testing.T, s testenv.S3, key string, change func([]byte) []byte) {
	t.Helper()
	ctx := context.Background()
	c := s.Client()
	obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(obj.Body)
	_ = obj.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.Bucket, Key: &key, Body: bytes.NewReader(change(b))}); err != nil {
		t.Fatal(err)
	}
}

// flipMiddle flips a run of bytes in the middle of b.
func flipMiddle(b []byte) []byte {
	for i := len(b) / 2; i < len(b)/2+8 && i < len(b); i++ {
		b[i] ^= 0xff
	}
	return b
}

func truncateHalf(b []byte) []byte { return b[:len(b)/2] }

// existingDataFolder creates a data folder with a database and files, and
// returns it with a snapshot of its contents.
func existingDataFolder(t *testing.T) (string, map[string]string) {
	t.Helper()
	v, err := vaultsim.Create(filepath.Join(t.TempDir(), "data"), vaultsim.Options{Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	return v.Dir, folderContents(t, v.Dir)
}

// folderContents maps every path under dir to its mode and bytes.
func folderContents(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			m[rel] = info.Mode().String()
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		m[rel] = info.Mode().String() + " " + string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameContents(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	got := folderContents(t, dir)
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s: removed from the target folder", p)
		} else if g != w {
			t.Errorf("%s: changed in the target folder", p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: left behind in the target folder", p)
		}
	}
}

// TestRestore_FaultsLeaveTargetUntouched runs `vwstream restore --to DIR
// --force` over an existing data folder against a damaged or unreadable
// replica: each fault ends with exit 1 and one stderr line naming the
// problem, no secret in the output, and DIR exactly as it was.
func TestRestore_FaultsLeaveTargetUntouched(t *testing.T) {
	otherKey, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		sealed bool
		damage func(t *testing.T, s testenv.S3) // changes the bucket after replication
		env    []string                         // appended to the fixture's environment
		args   []string                         // appended to restore --to DIR --force
		words  []string                         // the stderr line contains each (case-insensitive)
	}{
		{name: "corrupted object", damage: func(t *testing.T, s testenv.S3) {
			rewriteObject(t, s, restoreBase(t, s), flipMiddle)
		}, words: []string{"replica object db/", "damaged"}},
		{name: "truncated object", damage: func(t *testing.T, s testenv.S3) {
			rewriteObject(t, s, restoreBase(t, s), truncateHalf)
		}, words: []string{"replica object db/", "damaged"}},
		{name: "tampered sealed object", sealed: true, damage: func(t *testing.T, s testenv.S3) {
			rewriteObject(t, s, restoreBase(t, s), flipMiddle)
		}, words: []string{"db/", "damaged"}},
		{name: "truncated sealed object", sealed: true, damage: func(t *testing.T, s testenv.S3) {
			rewriteObject(t, s, restoreBase(t, s), truncateHalf)
		}, words: []string{"db/", "damaged"}},
		{name: "object forged with the published recipient", sealed: true, damage: func(t *testing.T, s testenv.S3) {
			rewriteObject(t, s, restoreBase(t, s), func(b []byte) []byte { return ageSealToBucket(t, s, b[:len(b)/2]) })
		}, words: []string{"db/", "forged"}},
		{name: "swapped genuine objects", sealed: true, damage: func(t *testing.T, s testenv.S3) {
			swapObjects(t, s, restoreBase(t, s), otherLTX(t, s, restoreBase(t, s)))
		}, words: []string{"db/", "forged"}},
		{name: "wrong passphrase", sealed: true, env: []string{"ENCRYPTION_PASSPHRASE=not-the-passphrase-5521"},
			words: []string{"wrong passphrase", "ENCRYPTION_PASSPHRASE"}},
		{name: "another bucket's key", sealed: true, env: []string{"ENCRYPTION_PASSPHRASE=", "ENCRYPTION_KEY=" + otherKey.String()},
			words: []string{"ENCRYPTION_KEY", "not this bucket's key", "keys/age-recipient.txt"}},
		{name: "missing key object", sealed: true, damage: func(t *testing.T, s testenv.S3) {
			key := objectKey(layout.KeyPath)
			if _, err := s.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &s.Bucket, Key: &key}); err != nil {
				t.Fatal(err)
			}
		}, words: []string{"no bucket key", "keys/"}},
		{name: "missing bucket", sealed: true, env: []string{"S3_BUCKET=no-such-bucket-vwrestore"},
			words: []string{"no-such-bucket-vwrestore", "does not exist"}},
		{name: "at before the first point", sealed: true, args: []string{"--at", "2001-01-01T00:00:00Z"},
			words: []string{"2001-01-01", "range is " + time.Now().UTC().Format("2006-01-02"), " to "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testenv.NewS3(t)
			env := replicaFixture(t, s, tc.sealed)
			if tc.damage != nil {
				tc.damage(t, s)
			}
			env = withEnv(env, tc.env...)
			dir, before := existingDataFolder(t)
			args := append([]string{"restore", "--to", dir, "--force"}, tc.args...)
			code, stdout, stderr := invoke(t, env, args...)
			if code != exitFailure {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, exitFailure, stdout, stderr)
			}
			// One line, after the warning an unencrypted target always logs.
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if !tc.sealed && len(lines) > 1 && strings.Contains(lines[0], "ALLOW_UNENCRYPTED=true") {
				lines = lines[1:]
			}
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "vwstream restore: ") {
				t.Errorf("stderr has %d lines, want one error line:\n%s", len(lines), stderr)
			}
			for _, w := range tc.words {
				if !strings.Contains(strings.ToLower(stderr), strings.ToLower(w)) {
					t.Errorf("stderr does not mention %q: %s", w, stderr)
				}
			}
			for _, secret := range []string{s.SecretKey, restorePassphrase, "not-the-passphrase-5521", otherKey.String()} {
				if strings.Contains(stdout+stderr, secret) {
					t.Errorf("output shows a secret: %s%s", stdout, stderr)
				}
			}
			sameContents(t, dir, before)
			t.Logf("stderr: %s", strings.TrimSpace(stderr))
		})
	}
}

// TestRestore_WithBucketKey: the bucket key itself, taken out of
// keys/age-identity.age with the passphrase as the docs show (age -d), restores
// without the passphrase; it never shows in the output.
func TestRestore_WithBucketKey(t *testing.T) {
	s := testenv.NewS3(t)
	env := replicaFixture(t, s, true)
	out, err := s.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: &s.Bucket, Key: new(objectKey(layout.KeyPath))})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	id, err := age.NewScryptIdentity(restorePassphrase)
	if err != nil {
		t.Fatal(err)
	}
	r, err := age.Decrypt(out.Body, id)
	if err != nil {
		t.Fatal(err)
	}
	identityFile, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "bucket-key.txt")
	if err := os.WriteFile(keyFile, identityFile, 0o600); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "restored")
	code, stdout, stderr := invoke(t, withEnv(env, "ENCRYPTION_PASSPHRASE=", "ENCRYPTION_KEY_FILE="+keyFile, "LOG_LEVEL=error"), "restore", "--to", dir)
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "db.sqlite3")); err != nil {
		t.Fatalf("no database restored: %v", err)
	}
	for _, line := range strings.Split(string(identityFile), "\n") {
		if strings.HasPrefix(line, "AGE-SECRET-KEY-") && strings.Contains(stdout+stderr, line) {
			t.Fatalf("output shows the bucket key: %s", stdout)
		}
	}
}

// TestRestore_ReplacesExistingFolder is the control for the faults above: the
// same fixture, undamaged, restores over the existing folder.
func TestRestore_ReplacesExistingFolder(t *testing.T) {
	s := testenv.NewS3(t)
	env := replicaFixture(t, s, true)
	dir, before := existingDataFolder(t)
	code, stdout, stderr := invoke(t, withEnv(env, "LOG_LEVEL=error"), "restore", "--to", dir, "--force")
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "at transaction ") {
		t.Errorf("output does not report the transaction reached: %s", stdout)
	}
	after := folderContents(t, dir)
	if after["db.sqlite3"] == before["db.sqlite3"] {
		t.Error("the database was not replaced")
	}
	if _, ok := after["config.json"]; ok {
		t.Error("a file the replica does not hold survived the forced restore")
	}
}

// ageSealToBucket seals b with the stock age CLI to the recipient the bucket
// publishes in keys/age-recipient.txt: a forgery anyone who can write the
// bucket can make.
func ageSealToBucket(t *testing.T, s testenv.S3, b []byte) []byte {
	t.Helper()
	out, err := s.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: &s.Bucket, Key: new(objectKey("keys/age-recipient.txt"))})
	if err != nil {
		t.Fatal(err)
	}
	recipient, err := io.ReadAll(out.Body)
	_ = out.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Tool(t, "age"), "-r", strings.TrimSpace(string(recipient)))
	cmd.Stdin = bytes.NewReader(b)
	sealed, err := cmd.Output()
	if err != nil {
		t.Fatalf("age -r: %v", err)
	}
	return sealed
}

// otherLTX returns an LTX object of the replica other than key.
func otherLTX(t *testing.T, s testenv.S3, key string) string {
	t.Helper()
	out, err := s.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &s.Bucket, Prefix: new(objectKey("db/"))})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		if strings.HasSuffix(*o.Key, ".ltx") && *o.Key != key {
			return *o.Key
		}
	}
	t.Fatal("the replica has one LTX object only")
	return ""
}

// swapObjects exchanges the bytes of two objects behind vwstream's back.
func swapObjects(t *testing.T, s testenv.S3, a, b string) {
	t.Helper()
	var bBytes []byte
	rewriteObject(t, s, b, func(old []byte) []byte { bBytes = append([]byte{}, old...); return old })
	var aBytes []byte
	rewriteObject(t, s, a, func(old []byte) []byte { aBytes = old; return bBytes })
	rewriteObject(t, s, b, func([]byte) []byte { return aBytes })
}

// A restore without the passphrase or key of a sealed prefix says so, and
// exits 2 (a missing variable), even with ALLOW_UNENCRYPTED: it does not call
// the sealed objects damaged, and touches neither the folder nor the bucket.
func TestRestore_SealedPrefixWithoutKey(t *testing.T) {
	s := testenv.NewS3(t)
	env := withEnv(replicaFixture(t, s, true), "ENCRYPTION_PASSPHRASE=", "ALLOW_UNENCRYPTED=true", "LOG_LEVEL=error")
	dir, before := existingDataFolder(t)
	code, stdout, stderr := invoke(t, env, "restore", "--to", dir, "--force")
	if code != exitUsage || strings.Count(stderr, "\n") != 1 ||
		!strings.Contains(stderr, "this bucket is encrypted: set ENCRYPTION_PASSPHRASE or ENCRYPTION_KEY") || strings.Contains(stderr, "damaged") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	sameContents(t, dir, before)
}

// restore --force never replaces a database another process has open (its
// next commit would be lost without a word): one line, the folder untouched;
// --allow-open overrides.
func TestRestore_RefusesOpenDatabase(t *testing.T) {
	s := testenv.NewS3(t)
	env := withEnv(replicaFixture(t, s, true), "LOG_LEVEL=error")
	dir, before := existingDataFolder(t)
	db := filepath.Join(dir, "db.sqlite3")

	// The stock sqlite3 shell keeps the database open, as Vaultwarden would.
	holder := exec.Command(testenv.Tool(t, "sqlite3"), db)
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = holder.Wait() }()
	if _, err := io.WriteString(stdin, "SELECT 'open' FROM sqlite_master LIMIT 1;\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	before = folderContents(t, dir) // with the -shm the open connection made

	code, out, stderr := invoke(t, env, "restore", "--to", dir, "--force")
	if code != exitFailure || !strings.Contains(stderr, "open in another process") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("restore --force over an open database: exit %d\n%s%s", code, out, stderr)
	}
	sameContents(t, dir, before)

	code, out, stderr = invoke(t, env, "restore", "--to", dir, "--force", "--allow-open")
	if code != exitOK {
		t.Fatalf("restore --force --allow-open: exit %d\n%s%s", code, out, stderr)
	}
}
