package alert_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/alert"
	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// Stopping the S3 server while Vaultwarden-shaped writes go on raises
// replication_stalled once the changes have waited REPLICATION_ALERT_AFTER;
// starting it again clears the alert once the replica caught up. Replication
// is the real engine on a real database; the lag is real time, so the test
// waits for each state rather than timing it.
func TestEngine_ReplicationStalled(t *testing.T) {
	if testing.Short() {
		t.Skip("stops an S3 server")
	}
	srv := testenv.NewOwnS3(t)
	ctx := t.Context()
	store, err := objstore.NewS3(ctx, objstore.S3Options{
		Endpoint: srv.Env.Endpoint, Region: srv.Env.Region, Bucket: srv.Env.Bucket, Prefix: "vaultwarden",
		AccessKeyID: srv.Env.AccessKey, SecretAccessKey: srv.Env.SecretKey, ForcePathStyle: true,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := vaultsim.Create(t.TempDir(), vaultsim.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	r, err := dbrepl.New(dbrepl.Options{DBPath: v.DBPath(), Store: store, SyncInterval: time.Second,
		ShutdownTimeout: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })

	board := status.NewBoard(status.Options{Role: config.RolePrimary})
	board.AddSource(func(s *status.Status) {
		st := r.Status()
		s.DB = &status.DB{TXIDLocal: st.LocalTXID, TXIDReplicated: st.ReplicatedTXID,
			LagSeconds: st.Lag.Seconds(), LastSync: st.LastSyncAt, LastError: st.LastError}
	})
	n, got := webhook(t)
	e := alert.New(alert.Options{Board: board, Notifier: n, ReplicationAfter: 3 * time.Second})

	wctx, stopWrites := context.WithCancel(ctx)
	defer stopWrites()
	w := vaultsim.NewWorkload(v, vaultsim.WorkloadOptions{Rate: 10, Burst: 2, Writers: 1, Seed: 7,
		AttachmentRatio: -1, SendRatio: -1})
	go func() { _, _ = w.Run(wctx) }()

	// Replicating: no alert while the server answers.
	waitFor(t, "the replica to catch up", func() bool {
		st := r.Status()
		return st.ReplicatedTXID > 0 && st.LastError == ""
	})
	e.Evaluate(ctx)
	none(t, got, "while replicating")

	srv.Stop()
	waitFor(t, "replication_stalled", func() bool { e.Evaluate(ctx); return len(e.Active()) > 0 })
	m := expect(t, got, "vwstream alert replication_stalled: critical")
	if !strings.Contains(m.Message, "REPLICATION_ALERT_AFTER=3s") || !strings.Contains(m.Message, "waited") {
		t.Errorf("message %q", m.Message)
	}
	if strings.Contains(m.Message, srv.Env.SecretKey) {
		t.Errorf("message %q holds the S3 secret", m.Message)
	}

	stopWrites()
	srv.Start()
	waitFor(t, "the clear", func() bool { e.Evaluate(ctx); return len(e.Active()) == 0 })
	expect(t, got, "vwstream alert replication_stalled: cleared")
}

// waitFor polls cond for up to two minutes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 2 minutes", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
