package node_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/vwstream/vwstream/internal/bucket"
	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/node"
	"github.com/vwstream/vwstream/internal/restore"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vault"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// vwload builds the Vaultwarden stand-in the node supervises in these tests.
func vwload(t *testing.T) string {
	return testenv.Binaries(t, "github.com/vwstream/vwstream/cmd/vwload")[0]
}

// s3Config is a node configuration against a fresh bucket of the test server,
// sealed with a passphrase, with the data folder dir.
func s3Config(t *testing.T, s testenv.S3, dir string, extra ...string) *config.Config {
	t.Helper()
	// extra comes first: the first occurrence of a variable wins.
	env := append(append([]string{}, extra...),
		"DATA_FOLDER="+dir,
		"STATUS_ADDR=off", "STATUS_FILE="+filepath.Join(t.TempDir(), "status.json"),
		"S3_BUCKET="+s.Bucket, "S3_ENDPOINT="+s.Endpoint, "S3_REGION="+s.Region,
		"S3_ACCESS_KEY_ID="+s.AccessKey, "S3_SECRET_ACCESS_KEY="+s.SecretKey,
		"ENCRYPTION_PASSPHRASE=node test passphrase",
		"LITESTREAM_SYNC_INTERVAL=1s", "LITESTREAM_SHUTDOWN_TIMEOUT=10s", "SYNC_SHUTDOWN_TIMEOUT=10s",
	)
	cfg, err := config.Load(nil, env, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	// The bucket key, wrapped with a cheap scrypt work factor: the default one
	// costs seconds under -race, and the node loads whatever the key says.
	ctx := context.Background()
	plain, err := bucket.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seal.CreateKey(ctx, plain, cfg.Encryption.Passphrase, seal.KeyOptions{WorkFactor: 10}); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// restoreAndVerify restores the replica into a fresh folder and checks that every
// transaction in the ledger is there.
func restoreAndVerify(t *testing.T, cfg *config.Config, ledger string) vaultsim.Report {
	t.Helper()
	ctx := context.Background()
	view, err := dataViewFor(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	res, err := restore.Replica(ctx, restore.Options{Store: view, Dir: dir})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	rep, err := vaultsim.Verify(res.Database, ledger, time.Now())
	if err != nil {
		t.Fatalf("verify restored copy: %v (%+v)", err, rep)
	}
	return rep
}

// waitReady waits until n has started, failing the test if Run ends first.
func waitReady(t *testing.T, n *node.Node, done <-chan error) {
	t.Helper()
	select {
	case <-n.Ready():
	case err := <-done:
		t.Fatalf("run ended during start-up: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("node not ready within 60 s")
	}
}

// TestNode_GracefulStopLosesNothing: SIGTERM (ctx cancel) while the supervised
// stand-in writes; when Run returns, every committed transaction is in S3.
func TestNode_GracefulStopLosesNothing(t *testing.T) {
	s := testenv.NewS3(t)
	work := t.TempDir()
	data := filepath.Join(work, "data")
	v, err := vaultsim.Create(data, vaultsim.Options{Seed: 7, Size: "small"})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	ledger := filepath.Join(work, "ledger")
	cfg := s3Config(t, s, data)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	n := node.New(node.Options{
		Config:  cfg,
		Command: []string{vwload(t), "serve", "--dir", data, "--addr", testenv.FreeAddr(t), "--write-rate", "200", "--ledger", ledger},
		Env:     os.Environ(),
		Stdout:  testWriter{t}, Stderr: testWriter{t},
		Logger: testLogger(t),
	})
	go func() { done <- n.Run(ctx) }()
	waitReady(t, n, done)
	time.Sleep(3 * time.Second)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("run did not stop within 60 s")
	}
	rep := restoreAndVerify(t, cfg, ledger)
	if rep.LedgerEntries < 100 {
		t.Fatalf("only %d transactions were written; the test proves nothing", rep.LedgerEntries)
	}
}

// TestNode_ChildExitCode: a child that fails on its own stops the node, whose
// error carries the child's exit code.
func TestNode_ChildExitCode(t *testing.T) {
	s := testenv.NewS3(t)
	data := t.TempDir()
	cfg := s3Config(t, s, data)
	err := node.Run(context.Background(), node.Options{
		Config: cfg, Command: []string{"sh", "-c", "exit 3"}, Env: os.Environ(),
		Stdout: testWriter{t}, Stderr: testWriter{t}, Logger: testLogger(t),
	})
	var ce *node.ChildExitError
	if !errors.As(err, &ce) || ce.Code != 3 {
		t.Fatalf("run = %v, want the child's exit code 3", err)
	}
}

// writtenVault creates a small vault in data and commits count transactions
// to it, recorded in ledger.
func writtenVault(t *testing.T, data, ledger string, seed int64, count int64) {
	t.Helper()
	v, err := vaultsim.Create(data, vaultsim.Options{Seed: seed, Size: "small"})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := vaultsim.NewWorkload(v, vaultsim.WorkloadOptions{Rate: -1, Count: count, Ledger: ledger}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// runUntilReady runs a node until its start-up is complete, then stops it
// (SIGTERM) and returns what Run returned.
func runUntilReady(t *testing.T, opts node.Options) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := node.New(opts)
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	waitReady(t, n, done)
	cancel()
	return <-done
}

// TestNode_StartUpRestoreAndStaleVolume: an empty data folder is restored before
// the child starts; a different database in its place is refused as stale.
func TestNode_StartUpRestoreAndStaleVolume(t *testing.T) {
	s := testenv.NewS3(t)
	work := t.TempDir()
	data := filepath.Join(work, "data")
	ledger := filepath.Join(work, "ledger")
	writtenVault(t, data, ledger, 3, 50)
	cfg := s3Config(t, s, data)
	opts := node.Options{Config: cfg, Env: os.Environ(), Stdout: testWriter{t}, Stderr: testWriter{t}, Logger: testLogger(t)}

	// First run: a sidecar that replicates, stopped once it has started.
	// Stopping right after start must flush too: no wait for a first sync.
	if err := runUntilReady(t, opts); err != nil {
		t.Fatalf("first run: %v", err)
	}

	// Lose the volume: the next start restores before the child runs, and the
	// child sees the database.
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	// A wrong passphrase is found while the restore is already planned: the
	// start fails with the key's error, restores nothing and starts no child.
	wrong := opts
	badCfg := *cfg
	badCfg.Encryption.Passphrase = "not the node test passphrase"
	wrong.Config = &badCfg
	marker := filepath.Join(work, "child-ran")
	wrong.Command = []string{"touch", marker}
	if err := node.Run(context.Background(), wrong); !errors.Is(err, seal.ErrWrongPassphrase) {
		t.Fatalf("run with a wrong passphrase = %v, want ErrWrongPassphrase", err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("the child ran despite the wrong passphrase (%v)", err)
	}
	entries, _ := os.ReadDir(data)
	for _, e := range entries {
		if e.Name() != vault.NodeIDFile && e.Name() != vault.LockFile { // the volume's identity and lock
			t.Fatalf("a failed start left %s in the data folder", e.Name())
		}
	}

	withChild := opts
	withChild.Command = []string{"sh", "-c", `test -s "$0/db.sqlite3"`, data}
	if err := node.Run(context.Background(), withChild); err != nil {
		t.Fatalf("run on an empty data folder: %v", err)
	}
	if rep, err := vaultsim.Verify(filepath.Join(data, "db.sqlite3"), ledger, time.Now()); err != nil {
		t.Fatalf("start-up restore: %v (%+v)", err, rep)
	}

	// A stale volume: another vault's database where ours was.
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	other, err := vaultsim.Create(data, vaultsim.Options{Seed: 99, Size: "small"})
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	err = node.Run(context.Background(), withChild)
	if !errors.Is(err, node.ErrStale) {
		t.Fatalf("run on a stale volume = %v, want ErrStale", err)
	}
}

// TestNode_WritesRightAfterStartUpRestore: after a start-up restore the child
// starts while replication is still opening the restored database; what it
// commits in those first moments is replicated all the same.
func TestNode_WritesRightAfterStartUpRestore(t *testing.T) {
	s := testenv.NewS3(t)
	work := t.TempDir()
	data := filepath.Join(work, "data")
	v, err := vaultsim.Create(data, vaultsim.Options{Seed: 21, Size: "medium"})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	ledger := filepath.Join(work, "ledger")
	cfg := s3Config(t, s, data)
	serve := []string{vwload(t), "serve", "--dir", data, "--write-rate", "300", "--ledger", ledger}

	// Populate the replica, then lose the volume.
	first := node.New(node.Options{Config: cfg, Logger: testLogger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	waitReady(t, first, done)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("first run: %v", err)
	}
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}

	// Cold start: restore, then the child writes at once.
	ctx, cancel = context.WithCancel(context.Background())
	n := node.New(node.Options{Config: cfg, Command: append(serve, "--addr", testenv.FreeAddr(t)), Env: os.Environ(),
		Stdout: testWriter{t}, Stderr: testWriter{t}, Logger: testLogger(t)})
	go func() { done <- n.Run(ctx) }()
	waitReady(t, n, done)
	time.Sleep(2 * time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("cold start run: %v", err)
	}
	if rep := restoreAndVerify(t, cfg, ledger); rep.LedgerEntries < 50 {
		t.Fatalf("only %d transactions written after the restore; the test proves nothing", rep.LedgerEntries)
	}
}

// TestNode_ColdStartWithBucketKey: a node given the bucket key itself
// (ENCRYPTION_KEY, no passphrase) replicates, and after the volume is lost
// restores everything before its child starts; another key is refused before
// anything is restored.
func TestNode_ColdStartWithBucketKey(t *testing.T) {
	s := testenv.NewS3(t)
	work := t.TempDir()
	data := filepath.Join(work, "data")
	ledger := filepath.Join(work, "ledger")
	writtenVault(t, data, ledger, 5, 30)

	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyed := func(identity string) node.Options {
		env := []string{"DATA_FOLDER=" + data, "STATUS_ADDR=off", "STATUS_FILE=" + filepath.Join(work, "status.json"),
			"S3_BUCKET=" + s.Bucket, "S3_ENDPOINT=" + s.Endpoint, "S3_REGION=" + s.Region,
			"S3_ACCESS_KEY_ID=" + s.AccessKey, "S3_SECRET_ACCESS_KEY=" + s.SecretKey,
			"ENCRYPTION_KEY=" + identity, "LITESTREAM_SHUTDOWN_TIMEOUT=10s", "SYNC_SHUTDOWN_TIMEOUT=10s"}
		cfg, err := config.Load(nil, env, os.ReadFile)
		if err != nil {
			t.Fatal(err)
		}
		return node.Options{Config: cfg, Env: os.Environ(), Stdout: testWriter{t}, Stderr: testWriter{t}, Logger: testLogger(t)}
	}
	// The key is made the bucket's as a first start with the passphrase does
	// (cheap scrypt here); from then on the node needs only the key.
	opts := keyed(id.String())
	plain, err := bucket.Open(context.Background(), opts.Config, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := seal.ParseKey(id.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := seal.AdoptKey(context.Background(), plain, key, "bucket key test passphrase", seal.KeyOptions{WorkFactor: 10}); err != nil {
		t.Fatal(err)
	}

	if err := runUntilReady(t, opts); err != nil {
		t.Fatalf("sidecar with the bucket key: %v", err)
	}
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}

	other, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Run(context.Background(), keyed(other.String())); !errors.Is(err, seal.ErrWrongKey) {
		t.Fatalf("run with another key = %v, want ErrWrongKey", err)
	}
	if _, err := os.Stat(filepath.Join(data, "db.sqlite3")); !os.IsNotExist(err) {
		t.Fatalf("a refused start restored the database (%v)", err)
	}

	withChild := keyed(id.String())
	withChild.Command = []string{"sh", "-c", `test -s "$0/db.sqlite3" && test -s "$0/config.json"`, data}
	if err := node.Run(context.Background(), withChild); err != nil {
		t.Fatalf("cold start with the bucket key: %v", err)
	}
	if rep, err := vaultsim.Verify(filepath.Join(data, "db.sqlite3"), ledger, time.Now()); err != nil {
		t.Fatalf("cold start with the bucket key: %v (%+v)", err, rep)
	}
}
