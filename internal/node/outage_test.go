package node_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/bucket"
	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/lease"
	"github.com/vwstream/vwstream/internal/node"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vault"
)

// gate is a proxy in front of the S3 test server that one node talks
// through: down, it drops every connection (or, hung, holds every request
// unanswered), so that node sees the store out while others reach it
// directly (a partition).
type gate struct {
	URL  string
	down atomic.Bool
	hung atomic.Bool
}

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.down.Load() {
			if g.hung.Load() {
				for g.down.Load() && r.Context().Err() == nil {
					time.Sleep(50 * time.Millisecond)
				}
			}
			panic(http.ErrAbortHandler) // the connection is cut, as by a dead link
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	return g
}

// outageNode runs a primary that supervises the stand-in writing at 50 tx/s,
// talking to S3 through a gate, with a short lease.
func outageNode(t *testing.T, s testenv.S3, extra ...string) (n *node.Node, cfg *config.Config, g *gate, ledger string, done chan error, stop func()) {
	t.Helper()
	g = newGate(t, s.Endpoint)
	via := s
	via.Endpoint = g.URL
	data := filepath.Join(t.TempDir(), "data")
	ledger = filepath.Join(t.TempDir(), "ledger")
	writtenVault(t, data, ledger, 31, 10)
	cfg = s3Config(t, via, data, append([]string{"LEASE_TTL=3s", "LEASE_RENEW_INTERVAL=1s", "LITESTREAM_SHUTDOWN_TIMEOUT=30s"}, extra...)...)
	ctx, cancel := context.WithCancel(context.Background())
	n = node.New(node.Options{
		Config:  cfg,
		Command: []string{vwload(t), "serve", "--dir", data, "--addr", testenv.FreeAddr(t), "--write-rate", "50", "--ledger", ledger},
		Env:     os.Environ(), Stdout: testWriter{t}, Stderr: testWriter{t}, Logger: testLogger(t),
	})
	done = make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	waitReady(t, n, done)
	return n, cfg, g, ledger, done, cancel
}

// An S3 outage three times as long as the lease does not take the vault
// down (LEASE_LOST_ACTION=serve, the default): Vaultwarden keeps running and
// committing, the lease shows it waits, and once the store answers again the
// lease is confirmed and every committed transaction reaches the replica.
func TestNode_OutageKeepsServing(t *testing.T) {
	for _, hung := range []bool{false, true} {
		name := "refused"
		if hung {
			name = "hung"
		}
		t.Run(name, func(t *testing.T) { checkOutageKeepsServing(t, hung) })
	}
}

func checkOutageKeepsServing(t *testing.T, hung bool) {
	s := testenv.NewS3(t)
	n, cfg, g, ledger, done, stop := outageNode(t, s)
	defer stop()
	time.Sleep(2 * time.Second)

	g.hung.Store(hung)
	g.down.Store(true)
	time.Sleep(9 * time.Second)
	select {
	case err := <-done:
		t.Fatalf("the node stopped during a 9 s outage of a 3 s lease: %v", err)
	default:
	}
	st := n.Status()
	if st.Child == nil || !st.Child.Running {
		t.Fatalf("the child is not running during the outage: %+v", st.Child)
	}
	if st.Lease == nil || !st.Lease.Ours || !strings.Contains(st.Lease.Error, "not confirmed") {
		t.Fatalf("lease during the outage = %+v, want ours and waiting", st.Lease)
	}

	g.down.Store(false)
	deadline := time.Now().Add(30 * time.Second)
	for st = n.Status(); st.Lease == nil || st.Lease.Error != ""; st = n.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("lease not confirmed within 30 s of the store's return: %+v", st.Lease)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("run after the outage: %v", err)
	}
	rep := restoreAndVerify(t, cfg, ledger)
	if rep.LedgerEntries < 300 {
		t.Fatalf("only %d transactions were written; the test proves nothing", rep.LedgerEntries)
	}
}

// A primary whose lease another node took while the store was out of its
// reach (a forced promote elsewhere) fences as soon as the store answers: it
// stops, says so, and keeps its database aside for a person, so the next
// start restores the new primary's replica.
func TestNode_OutageLeaseTakenFences(t *testing.T) {
	s := testenv.NewS3(t)
	_, cfg, g, _, done, stop := outageNode(t, s)
	defer stop()
	time.Sleep(2 * time.Second)
	g.down.Store(true)
	time.Sleep(5 * time.Second)

	// Elsewhere, with the store in reach: promote --force.
	cfgDirect := *cfg
	cfgDirect.S3.Endpoint = s.Endpoint
	other, err := bucket.Open(context.Background(), &cfgDirect, nil)
	if err != nil {
		t.Fatal(err)
	}
	taken, err := lease.Acquire(context.Background(), other, lease.Options{Force: true, TTL: 3 * time.Second, RenewInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Release(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("the node stopped before the store answered again: %v", err)
	case <-time.After(2 * time.Second):
	}

	g.down.Store(false)
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the old primary did not fence within 30 s of the store's return")
	}
	if !errors.Is(err, node.ErrFenced) || !errors.Is(err, lease.ErrTaken) {
		t.Fatalf("run = %v, want fenced because the lease was taken", err)
	}
	data := cfg.DataFolder
	kept, _ := filepath.Glob(filepath.Join(data, ".vwstream-kept-fenced-*", "db.sqlite3"))
	if len(kept) != 1 {
		t.Fatalf("the fenced database was not kept aside: %v", kept)
	}
	if _, err := os.Stat(filepath.Join(data, "db.sqlite3")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the fenced database is still in place (%v): the next start would resume from it", err)
	}
	if names, _ := vault.Entries(data); len(names) == 0 {
		t.Fatal("the files of the data folder went with the database")
	}
}

// LEASE_LOST_ACTION=stop keeps the fencing for automatic failover: the
// primary stops once it could not renew for LEASE_TTL - LEASE_RENEW_INTERVAL.
func TestNode_OutageStopAction(t *testing.T) {
	s := testenv.NewS3(t)
	_, _, g, _, done, stop := outageNode(t, s, "LEASE_LOST_ACTION=stop")
	defer stop()
	g.down.Store(true)
	select {
	case err := <-done:
		if !errors.Is(err, node.ErrFenced) || errors.Is(err, lease.ErrTaken) {
			t.Fatalf("run = %v, want fenced for a lease not renewed", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("LEASE_LOST_ACTION=stop: the node still runs 20 s into the outage")
	}
}
