package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/vwstream/vwstream/internal/bucket"
	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/head"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/testenv"
)

// A replica whose newest LTX objects were deleted holds less than its head
// promised: restore refuses, naming the missing transactions, and leaves the
// folder alone; --accept-older restores the older state.
func TestRestore_OlderThanHead(t *testing.T) {
	s := testenv.NewS3(t)
	env := withEnv(replicaFixture(t, s, true), "LOG_LEVEL=error")
	ctx := context.Background()
	data := dataViewOf(t, env)
	newest, err := dbrepl.ReplicaTXID(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := head.NewWriter(data).Advance(ctx, head.Head{TXID: newest, Epoch: 1}); err != nil {
		t.Fatal(err)
	}

	// The control: an intact replica passes the head.
	dir := filepath.Join(t.TempDir(), "intact")
	if code, stdout, stderr := invoke(t, env, "restore", "--to", dir); code != exitOK {
		t.Fatalf("intact replica: exit %d\n%s%s", code, stdout, stderr)
	}

	// Delete every LTX object that holds the newest transaction.
	out, err := s.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.Bucket, Prefix: new(objectKey("db/"))})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		name := strings.TrimSuffix(filepath.Base(*o.Key), ".ltx")
		_, maxHex, ok := strings.Cut(name, "-")
		if max, err := strconv.ParseUint(maxHex, 16, 64); !ok || err != nil || max != newest {
			continue
		}
		if _, err := s.Client().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.Bucket, Key: o.Key}); err != nil {
			t.Fatal(err)
		}
	}
	if now, err := dbrepl.ReplicaTXID(ctx, data); err != nil || now >= newest {
		t.Fatalf("replica at %d after deleting the newest objects (head %d): %v", now, newest, err)
	}

	folder, before := existingDataFolder(t)
	code, stdout, stderr := invoke(t, env, "restore", "--to", folder, "--force")
	if code != exitFailure || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "older than its head") ||
		!strings.Contains(stderr, "promised "+strconv.FormatUint(newest, 10)) || !strings.Contains(stderr, "--accept-older") {
		t.Fatalf("older replica: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	sameContents(t, folder, before)
	t.Logf("stderr: %s", strings.TrimSpace(stderr))

	code, stdout, stderr = invoke(t, env, "restore", "--to", folder, "--force", "--accept-older")
	if code != exitOK {
		t.Fatalf("--accept-older: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}

// An older genuine config.json put back under its own name (a rotated admin
// token returns) is not the copy the head recorded: restore refuses naming
// it, the folder untouched; --accept-older restores it anyway.
func TestRestore_OlderConfigPutBack(t *testing.T) {
	s := testenv.NewS3(t)
	env := withEnv(replicaFixture(t, s, true), "LOG_LEVEL=error")
	ctx := context.Background()
	data := dataViewOf(t, env)
	oldToken, newToken := []byte(`{"admin_token":"old-rotated-away"}`), []byte(`{"admin_token":"new-after-rotation"}`)
	if _, err := data.Put(ctx, "files/config.json", bytes.NewReader(oldToken), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	raw, err := s.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: new(objectKey("files/config.json"))})
	if err != nil {
		t.Fatal(err)
	}
	oldSealed, err := io.ReadAll(raw.Body)
	raw.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := data.Put(ctx, "files/config.json", bytes.NewReader(newToken), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	newest, err := dbrepl.ReplicaTXID(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(newToken)
	if _, err := head.NewWriter(data).Advance(ctx, head.Head{TXID: newest, Epoch: 1,
		Files: map[string]string{"files/config.json": hex.EncodeToString(sum[:])}}); err != nil {
		t.Fatal(err)
	}

	// The control: the genuine newest copy passes.
	dir := filepath.Join(t.TempDir(), "intact")
	if code, stdout, stderr := invoke(t, env, "restore", "--to", dir); code != exitOK {
		t.Fatalf("intact: exit %d\n%s%s", code, stdout, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "config.json")); !bytes.Equal(b, newToken) {
		t.Fatalf("restored config.json %q, want the newest", b)
	}

	// Somebody with write access puts the older sealed object back.
	if _, err := s.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &s.Bucket, Key: new(objectKey("files/config.json")), Body: bytes.NewReader(oldSealed)}); err != nil {
		t.Fatal(err)
	}
	folder, before := existingDataFolder(t)
	code, stdout, stderr := invoke(t, env, "restore", "--to", folder, "--force")
	if code != exitFailure || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "files/config.json") || !strings.Contains(stderr, "--accept-older") {
		t.Fatalf("older config.json: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	sameContents(t, folder, before)
	code, stdout, stderr = invoke(t, env, "restore", "--to", folder, "--force", "--accept-older")
	if code != exitOK {
		t.Fatalf("--accept-older: exit %d\n%s%s", code, stdout, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(folder, "config.json")); !bytes.Equal(b, oldToken) {
		t.Fatalf("--accept-older restored config.json %q, want the older copy", b)
	}
}

// dataViewOf opens the sealed data view of the bucket env points at.
func dataViewOf(t *testing.T, env []string) objstore.Store {
	t.Helper()
	cfg, err := config.Load(nil, env, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	plain, err := bucket.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := bucket.Data(ctx, plain, cfg, bucket.ReadKey)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
