package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/bucket"
	"github.com/vwstream/vwstream/internal/node"
	"github.com/vwstream/vwstream/internal/serverdb"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/wiring"
)

// TestNode_ServerDatabase runs a primary with a PostgreSQL DATABASE_URL: no
// replication starts, file sync and the start-up snapshot run, the status
// reads "snapshots every ..." with the last dump's time, the snapshot
// restores into an empty database with the manifest's counts, and the
// password appears in no log line or status.
func TestNode_ServerDatabase(t *testing.T) {
	s := testenv.NewS3(t)
	ctx := context.Background()
	u := testenv.NewServerVault(t, serverdb.PostgreSQL, 40)
	raw := u.Kind + "://" + u.User + ":" + u.Password + "@" + u.Addr() + "/" + u.Database + "?sslmode=disable"
	data := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "config.json"), []byte(`{"domain":"https://vw.example"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := s3Config(t, s, data, "DATABASE_URL="+raw, "BACKUP_ENABLED=true", "BACKUP_ON_STARTUP=true",
		"BACKUP_CRON=@every 6h", "GPG_PASSPHRASE=node snapshot passphrase")
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n := node.New(node.Options{Config: cfg, Env: os.Environ(), Logger: logger})
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Run(runCtx) }()
	waitReady(t, n, done)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st := n.Status()
		if st.Snapshot != nil && !st.Snapshot.LastSuccess.IsZero() && st.DB != nil && !st.DB.LastSync.IsZero() {
			break
		}
		if st.Snapshot != nil && st.Snapshot.LastError != "" {
			t.Fatalf("start-up snapshot failed: %s", st.Snapshot.LastError)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot after 2 minutes; status %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok := n.Replication(); ok {
		t.Error("replication started for a server database")
	}
	st := n.Status()
	if !strings.Contains(st.DB.Server, "snapshots every 6h0m0s") || st.DB.SnapshotEvery != 6*3600 {
		t.Errorf("status db = %+v, want snapshots every 6h", st.DB)
	}
	stJSON, _ := json.Marshal(st)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if strings.Contains(logs.String(), u.Password) || strings.Contains(string(stJSON), u.Password) {
		t.Fatal("the database password appears in the logs or the status")
	}

	plain, err := bucket.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for obj, err := range plain.List(ctx, "db/") {
		if err != nil {
			t.Fatal(err)
		}
		t.Fatalf("a replica object exists for a server database: %s", obj.Key)
	}
	dst, err := serverdb.Parse(testenv.NewPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	res, err := snapshot.Restore(ctx, snapshot.RestoreOptions{Store: plain, Name: "latest", To: filepath.Join(t.TempDir(), "r"),
		Keys: wiring.SnapshotKeys(cfg), DatabaseURL: dst})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if res.Tables["ciphers"] != 40 {
		t.Errorf("restored ciphers = %d, want 40", res.Tables["ciphers"])
	}
	if b, err := os.ReadFile(filepath.Join(res.To, "config.json")); err != nil || !bytes.Contains(b, []byte("vw.example")) {
		t.Errorf("config.json not restored: %v", err)
	}
}
