package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// With the S3 server down during a snapshot, the encrypted archive stays in
// BACKUP_FALLBACK_DIR (verified, listed by `snapshots` as local); once the
// server is back the next backup uploads it, `verify` opens it on the target
// and the fallback folder is empty. A fallback folder on a full file system
// fails the run cleanly and keeps nothing half-written.
func TestBackup_FallbackWhenEveryDestinationIsDown(t *testing.T) {
	srv := testenv.NewOwnS3(t)
	v, err := vaultsim.Create(filepath.Join(t.TempDir(), "data"), vaultsim.Options{Seed: 6, Size: "small"})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	fallback := filepath.Join(t.TempDir(), "fallback")
	env := append(s3Env(srv.Env, srv.Env.Bucket, srv.Env.SecretKey), "LOG_LEVEL=error", "DATA_FOLDER="+v.Dir,
		"GPG_PASSPHRASE=fallback S3CR3T", "BACKUP_FALLBACK_DIR="+fallback)

	srv.Stop()
	code, out, stderr := invoke(t, env, "backup", "--json")
	var kept snapshot.Result
	if err := json.Unmarshal([]byte(out), &kept); code != exitFailure || err != nil {
		t.Fatalf("backup with the server down: exit %d, %v\n%s%s", code, err, out, stderr)
	}
	if kept.Local == "" || !strings.Contains(stderr, "archive kept in") {
		t.Errorf("the failed run does not say where the archive is: %s\n%s", out, stderr)
	}
	if _, err := os.Stat(filepath.Join(fallback, "snapshots", kept.Name)); err != nil {
		t.Fatalf("archive not in the fallback folder: %v", err)
	}
	_, out, _ = invoke(t, env, "snapshots", "--json")
	if !listed(t, out, "local", kept.Name) {
		t.Errorf("snapshots --json does not list %s as local:\n%s", kept.Name, out)
	}

	srv.Start()
	code, out, stderr = invoke(t, env, "backup", "--json")
	var next snapshot.Result
	if err := json.Unmarshal([]byte(out), &next); code != exitOK || err != nil {
		t.Fatalf("backup with the server back: exit %d, %v\n%s%s", code, err, out, stderr)
	}
	if !slices.Contains(next.Uploaded, kept.Name) {
		t.Errorf("the next run did not upload %s: %s", kept.Name, out)
	}
	if entries, _ := os.ReadDir(filepath.Join(fallback, "snapshots")); len(entries) != 0 {
		t.Errorf("fallback folder not empty after the upload: %v", entries)
	}
	_, out, _ = invoke(t, env, "snapshots", "--json")
	if !listed(t, out, "target", kept.Name) || listed(t, out, "local", kept.Name) {
		t.Errorf("snapshots --json after the upload:\n%s", out)
	}
	if code, out, stderr := invoke(t, env, "verify", "--snapshot", kept.Name); code != exitOK {
		t.Fatalf("verify %s: exit %d\n%s%s", kept.Name, code, out, stderr)
	}

	// A fallback folder too small for the archive.
	full := testenv.Tmpfs(t, 64<<10)
	srv.Stop()
	code, out, stderr = invoke(t, withEnv(env, "BACKUP_FALLBACK_DIR="+full), "backup")
	if code != exitFailure || !strings.Contains(stderr, "no local copy kept") {
		t.Fatalf("backup with a full fallback folder: exit %d\n%s%s", code, out, stderr)
	}
	var left []string
	_ = filepath.WalkDir(full, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Errorf("a failed local copy left files: %v", left)
	}
	if strings.Contains(out+stderr, "S3CR3T") {
		t.Errorf("output holds the passphrase: %s%s", out, stderr)
	}
}

// listed reports whether the destination named dest lists name in
// `snapshots --json` output.
func listed(t *testing.T, out, dest, name string) bool {
	t.Helper()
	var lists []destinationList
	if err := json.Unmarshal([]byte(out), &lists); err != nil {
		t.Fatalf("snapshots --json: %v\n%s", err, out)
	}
	for _, l := range lists {
		if l.Name == dest && slices.ContainsFunc(l.Snapshots, func(i snapshot.Info) bool { return i.Name == name }) {
			return true
		}
	}
	return false
}
