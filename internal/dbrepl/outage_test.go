package dbrepl

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// outageDuration is how long TestReplicator_SurvivesOutage keeps the server
// down: 30 s by default, VWSTREAM_DBREPL_OUTAGE (a Go duration) to
// change it.
func outageDuration(t *testing.T, name string, d time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a positive Go duration", name, v)
		}
	}
	return d
}

// TestReplicator_SurvivesOutage stops the S3 server for 30 s while a
// Vaultwarden-shaped workload writes, then starts it again on the same port and
// folder: replication keeps running, Status shows the error and a growing lag
// while the server is down, it catches up after the restart within a bound,
// Close returns nil, and a restore holds every committed transaction.
func TestReplicator_SurvivesOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("stops an S3 server for 30 s")
	}
	t.Parallel() // mostly waiting: overlap with the other server tests
	srv := testenv.NewOwnS3(t)
	checkOutage(t, srv, outageDuration(t, "VWSTREAM_DBREPL_OUTAGE", 30*time.Second), 0, srv.Stop, srv.Start)
}

// TestReplicator_SurvivesHungServer is the outage of a server that accepts
// connections but never answers (SIGSTOP; a partition that drops packets
// looks the same): the status must show the problem too, not an in-flight
// request that waits forever, and within the stall timeout and one sync
// interval (plus a second of slack for a busy machine). 15 s by default,
// VWSTREAM_DBREPL_HUNG_OUTAGE to change it.
func TestReplicator_SurvivesHungServer(t *testing.T) {
	if testing.Short() {
		t.Skip("freezes an S3 server for 15 s")
	}
	t.Parallel()
	srv := testenv.NewOwnS3(t)
	const interval = time.Second // checkOutage's SyncInterval
	checkOutage(t, srv, outageDuration(t, "VWSTREAM_DBREPL_HUNG_OUTAGE", 15*time.Second),
		stallTimeout(interval)+interval+time.Second, srv.Freeze, srv.Thaw)
}

// checkOutage replicates a workload, calls down, checks Status for the
// outage's length (the error within errWithin of down, unless 0), calls up and
// checks the catch-up, Close and a restore.
func checkOutage(t *testing.T, srv *testenv.OwnS3, outage, errWithin time.Duration, down, up func()) {
	ctx := context.Background()
	inner, err := objstore.NewS3(ctx, objstore.S3Options{
		Endpoint: srv.Env.Endpoint, Region: srv.Env.Region, Bucket: srv.Env.Bucket, Prefix: "vaultwarden",
		AccessKeyID: srv.Env.AccessKey, SecretAccessKey: srv.Env.SecretKey, ForcePathStyle: true,
		Logger: slog.New(slog.DiscardHandler), // its retry warnings would flood the test log
	})
	if err != nil {
		t.Fatal(err)
	}
	store := sealed(t, inner)

	work := t.TempDir()
	v, err := vaultsim.Create(filepath.Join(work, "data"), vaultsim.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	r, err := New(Options{DBPath: v.DBPath(), Store: store, SyncInterval: time.Second,
		ShutdownTimeout: 20 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = r.Close(ctx)
		}
	}()

	ledger := filepath.Join(work, "ledger")
	wctx, stopWorkload := context.WithCancel(ctx)
	defer stopWorkload()
	w := vaultsim.NewWorkload(v, vaultsim.WorkloadOptions{
		Rate: 20, Burst: 4, Writers: 2, Seed: 7, Ledger: ledger, AttachmentRatio: -1, SendRatio: -1,
	})
	workDone := make(chan error, 1)
	go func() { _, err := w.Run(wctx); workDone <- err }()

	// Replicating normally before the outage.
	time.Sleep(2 * time.Second)
	before := waitSynced(t, r, 1)
	if before.LastError != "" {
		t.Fatalf("error before the outage: %q", before.LastError)
	}

	down()
	downAt := time.Now()
	var sawError string
	var firstErr, firstLag, lastLag time.Duration
	var st Status
	for time.Since(downAt) < outage {
		time.Sleep(250 * time.Millisecond)
		st = r.Status()
		if !st.Running {
			t.Fatalf("replication stopped during the outage: %+v", st)
		}
		if firstLag == 0 {
			firstLag = st.Lag
		}
		lastLag = st.Lag
		if st.LastError != "" {
			sawError = st.LastError
			if firstErr == 0 {
				firstErr = time.Since(downAt)
			}
		}
	}
	// Errorf, not Fatalf: the catch-up and the restore below are still worth checking.
	if sawError == "" {
		t.Errorf("status showed no error during a %v outage: %+v", outage, st)
	} else if errWithin > 0 && firstErr > errWithin {
		t.Errorf("status showed the error %v after the outage began, want within %v", firstErr, errWithin)
	} else if st.LastError == "" {
		t.Errorf("status cleared the error while the server was still down: %+v", st)
	}
	if st.LocalTXID <= before.ReplicatedTXID {
		t.Errorf("no transaction captured during the outage (local %d, replicated before %d): is the workload writing?",
			st.LocalTXID, before.ReplicatedTXID)
	}
	// The lag counts from the last good sync, so it must cover most of the outage.
	if lastLag <= firstLag || lastLag < outage-5*time.Second {
		t.Errorf("lag did not grow during the outage: first %v, last %v, outage %v", firstLag, lastLag, outage)
	}
	t.Logf("during the outage: error %q (first after %v), lag %v -> %v, local txid %d, replicated %d",
		sawError, firstErr.Round(time.Millisecond), firstLag, lastLag, st.LocalTXID, st.ReplicatedTXID)

	up()
	upAt := time.Now()
	target := r.Status().LocalTXID
	// After an outage the retry backoff may have reached maxSyncBackoff; the
	// next attempt comes at most that long after the restart.
	bound := maxSyncBackoff + 10*time.Second
	for {
		st = r.Status()
		if st.ReplicatedTXID >= target && st.LastError == "" && st.Lag == 0 {
			break
		}
		if time.Since(upAt) > bound {
			t.Fatalf("replication did not catch up within %v of the restart: %+v", bound, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	catchUp := time.Since(upAt)
	t.Logf("caught up with txid %d %v after the restart", target, catchUp.Round(time.Millisecond))

	stopWorkload()
	if err := <-workDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("workload: %v", err)
	}
	closed = true
	if err := r.Close(ctx); err != nil {
		t.Fatalf("close after the outage: %v", err)
	}

	out := filepath.Join(work, "restored", vaultsim.DBName)
	res, err := Restore(ctx, RestoreOptions{Store: store, OutputPath: out, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	rep, err := vaultsim.Verify(out, ledger, time.Time{})
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v: %+v", err, rep)
	}
	if rep.Required == 0 {
		t.Fatal("the ledger is empty: the workload wrote nothing")
	}
	t.Logf("restored txid %d: all %d ledger transactions present", res.TXID, rep.Required)
}
