package node_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/head"
	"github.com/vwstream/vwstream/internal/node"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/testenv"
)

// bucketChecksums maps every object of the bucket to the SHA-256 of its bytes.
func bucketChecksums(t *testing.T, s testenv.S3) string {
	t.Helper()
	ctx := context.Background()
	c := s.Client()
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, o := range out.Contents {
		obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: o.Key})
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, obj.Body)
		obj.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("%s %s", *o.Key, hex.EncodeToString(h.Sum(nil))))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// A node started on a sealed prefix without the passphrase or key is refused
// with one line whatever ALLOW_UNENCRYPTED says, before it writes anything:
// every object of the bucket is byte for byte what it was (no lease, no
// plaintext rsa_key.pem, config.json or LTX file).
func TestNode_NoPlaintextOnSealedPrefix(t *testing.T) {
	s := testenv.NewS3(t)
	work := t.TempDir()
	data := filepath.Join(work, "data")
	writtenVault(t, data, filepath.Join(work, "ledger"), 11, 20)
	if err := os.WriteFile(filepath.Join(data, "config.json"), []byte(`{"admin_token":"sealed"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	sealed := s3Config(t, s, data)
	if err := runUntilReady(t, node.Options{Config: sealed, Env: os.Environ(), Stdout: testWriter{t}, Stderr: testWriter{t}, Logger: testLogger(t)}); err != nil {
		t.Fatalf("sealed primary: %v", err)
	}
	before := bucketChecksums(t, s)
	if !strings.Contains(before, "files/config.json") || !strings.Contains(before, "keys/age-identity.age") {
		t.Fatalf("the sealed primary did not replicate:\n%s", before)
	}

	// The downgrade attempt: same bucket and folder, no key, plaintext allowed.
	env := []string{"DATA_FOLDER=" + data, "STATUS_ADDR=off", "STATUS_FILE=" + filepath.Join(work, "status.json"),
		"S3_BUCKET=" + s.Bucket, "S3_ENDPOINT=" + s.Endpoint, "S3_REGION=" + s.Region,
		"S3_ACCESS_KEY_ID=" + s.AccessKey, "S3_SECRET_ACCESS_KEY=" + s.SecretKey,
		"ALLOW_UNENCRYPTED=true", "LITESTREAM_SHUTDOWN_TIMEOUT=10s", "SYNC_SHUTDOWN_TIMEOUT=10s"}
	cfg, err := config.Load(nil, env, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []config.Role{config.RolePrimary, config.RoleSecondary} {
		cfg.Role = role
		err = node.Run(context.Background(), node.Options{Config: cfg, Env: os.Environ(), Stdout: testWriter{t}, Stderr: testWriter{t}, Logger: testLogger(t)})
		if !errors.Is(err, seal.ErrSealedPrefix) || !strings.Contains(err.Error(), "this bucket is encrypted: set ENCRYPTION_PASSPHRASE or ENCRYPTION_KEY") ||
			strings.Contains(err.Error(), "\n") {
			t.Fatalf("%s start without the passphrase on a sealed prefix = %v", role, err)
		}
		t.Logf("%s: %v", role, err)
		if after := bucketChecksums(t, s); after != before {
			t.Fatalf("the refused %s start changed the bucket:\nbefore\n%s\nafter\n%s", role, before, after)
		}
	}
}

// A running primary keeps the replica's head; a cold start from a replica
// whose newest LTX objects were deleted refuses before restoring anything.
func TestNode_ColdStartOlderThanHead(t *testing.T) {
	s := testenv.NewS3(t)
	work := t.TempDir()
	data := filepath.Join(work, "data")
	writtenVault(t, data, filepath.Join(work, "ledger"), 12, 20)
	cfg := s3Config(t, s, data)
	opts := node.Options{Config: cfg, Env: os.Environ(), Stdout: testWriter{t}, Stderr: testWriter{t}, Logger: testLogger(t)}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := node.New(opts)
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	waitReady(t, n, done)
	view, err := dataViewFor(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var h *head.Head
	deadline := time.Now().Add(60 * time.Second)
	for h == nil || h.TXID == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the primary wrote no head within 60 s")
		}
		time.Sleep(500 * time.Millisecond)
		if h, _, err = head.Read(ctx, view); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("head %+v", h)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("primary: %v", err)
	}
	replica, err := dbrepl.ReplicaTXID(context.Background(), view)
	if err != nil || replica < h.TXID {
		t.Fatalf("replica at %d, head %+v: %v", replica, h, err)
	}

	// Delete the replica's LTX objects from the head's transaction on: with
	// the head at the first transaction, that is all of them, and the cold
	// start would otherwise begin with an empty database.
	c := s.Client()
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &s.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		name, ok := strings.CutSuffix(path.Base(*o.Key), ".ltx")
		_, maxHex, _ := strings.Cut(name, "-")
		if max, err := strconv.ParseUint(maxHex, 16, 64); ok && err == nil && max >= h.TXID {
			if _, err := c.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &s.Bucket, Key: o.Key}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer rcancel()
	err = node.Run(rctx, opts)
	if !errors.Is(err, head.ErrOlder) {
		t.Fatalf("cold start from a replica older than its head = %v, want ErrOlder", err)
	}
	t.Log(err)
	if _, err := os.Stat(filepath.Join(data, "db.sqlite3")); !os.IsNotExist(err) {
		t.Fatalf("the refused start restored the database (%v)", err)
	}
}
