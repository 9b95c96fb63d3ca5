package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/vwstream/vwstream/internal/bucket"
	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/lease"
	"github.com/vwstream/vwstream/internal/restore"
	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/wiring"
)

var (
	// ErrNotSecondary is returned by Promote on a node that is already the primary.
	ErrNotSecondary = errors.New("this node is not a secondary")
	// ErrNotReady is returned by Promote before the node has started.
	ErrNotReady = errors.New("this node is still starting")
)

// startSecondary brings the data folder to the replica's state and starts the
// child. A secondary never writes to the bucket: it reads db/ and files/, and
// looks at the lease only to report the primary. Persistent secondaries pull
// again every SECONDARY_SYNC_INTERVAL; serverless ones pull once.
func (n *Node) startSecondary(ctx context.Context) error {
	// The bucket key unwraps while the first pull lists and plans.
	data, ready := bucket.DataLater(ctx, n.plain, n.cfg, bucket.ReadKey)
	n.data = data
	_, err := n.pull(ctx)
	if err := bucket.AfterKey(ctx, ready, err); err != nil {
		return err
	}
	if err := n.startChild(); err != nil {
		return err
	}
	if n.cfg.Mode == config.ModePersistent {
		go n.secondaryLoop(ctx)
	}
	return nil
}

// secondaryLoop pulls every SECONDARY_SYNC_INTERVAL until ctx ends or the node
// is promoted.
func (n *Node) secondaryLoop(ctx context.Context) {
	tick := time.NewTicker(n.cfg.Sync.SecondaryInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n.currentRole() != config.RoleSecondary {
			return
		}
		if _, err := n.pull(ctx); err != nil {
			n.log.Error("secondary pull failed", "error", err)
			n.board.SetError("pull", err.Error())
		}
	}
}

// pull restores the database and files from the replica into the data folder
// when the replica changed since the last pull. Everything is staged while the
// child keeps serving; the child is stopped only for the swap and started again
// after it, and that downtime is logged.
func (n *Node) pull(ctx context.Context) (changed bool, err error) {
	n.secondary.pullMu.Lock()
	defer n.secondary.pullMu.Unlock()
	// A node promoted (its writers run on the data folder) or shutting down
	// (its child must stay stopped) while this pull waited must not swap.
	if n.currentRole() != config.RoleSecondary || n.stopping.Load() {
		return false, nil
	}
	fp, err := n.fingerprint(ctx)
	if err != nil {
		return false, err
	}
	if fp == n.secondary.pulled {
		// Checked and caught up: that is a successful sync for health.
		now := time.Now()
		n.board.Update(func(s *status.Status) {
			if s.DB != nil {
				s.DB.LastSync = now
			}
			if s.Files != nil {
				s.Files.LastSync = now
			}
		})
		return false, nil
	}
	var down time.Time
	c := n.currentChild()
	res, err := restore.Replica(ctx, restore.Options{
		Store:  n.data,
		Dir:    n.cfg.DataFolder,
		DBName: filepath.Base(n.cfg.DBPath),
		Force:  true,
		// Only what the replica holds is replaced; local-only entries
		// (icon_cache, tmp, unsynced config) stay.
		KeepOthers: true,
		// A sidecar's Vaultwarden runs beyond our reach and keeps the
		// database open: a secondary's copy is read-only, so it is swapped
		// under it as before; a supervised child is stopped first.
		AllowOpen: c == nil,
		Files:     wiring.RestoreFiles(n.cfg, n.data),
		BeforeSwap: func() error {
			down = time.Now()
			if c == nil {
				return nil
			}
			sctx, cancel := context.WithTimeout(context.Background(), n.opt.ChildStopTimeout)
			defer cancel()
			_ = c.stop(sctx) // stopped on purpose: its exit code does not matter
			return nil
		},
		Logger: n.log,
	})
	if c != nil && !down.IsZero() && !n.stopping.Load() {
		if serr := n.startChild(); serr != nil {
			return false, errors.Join(err, serr)
		}
		n.restarts.Add(1)
	}
	if err != nil {
		return false, fmt.Errorf("pull from the replica: %w", err)
	}
	n.secondary.pulled = fp
	n.board.SetError("pull", "")
	n.board.Update(func(s *status.Status) {
		s.DB = &status.DB{TXIDLocal: res.TXID, TXIDReplicated: res.TXID, LastSync: time.Now()}
		s.Files = &status.Files{LastSync: time.Now()}
	})
	if info, err := lease.Peek(ctx, n.plain); err == nil {
		n.board.Update(func(s *status.Status) { s.Lease = status.LeaseFromInfo(info) })
	}
	n.log.Info("pulled the replica", "txid", res.TXID, "timestamp", res.Timestamp, "files", res.Files,
		"downtime", time.Since(down).Round(time.Millisecond))
	return true, nil
}

// fingerprint summarises what the replica holds (db/ and files/ keys and
// versions) in one listing each, so an unchanged replica costs no download.
func (n *Node) fingerprint(ctx context.Context) (string, error) {
	h := sha256.New()
	empty := true
	for _, prefix := range []string{layout.DB, layout.Files} {
		for oi, err := range n.data.List(ctx, prefix) {
			if err != nil {
				return "", fmt.Errorf("list %s: %w", prefix, err)
			}
			empty = false
			fmt.Fprintf(h, "%s %d %s\n", oi.Key, oi.Size, oi.ETag)
		}
	}
	if empty {
		return "", fmt.Errorf("the replica is empty: start the primary first (%w)", dbrepl.ErrNoReplica)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Promote turns this secondary into the primary: it takes the lease (waiting for
// the old primary's to expire, or at once with force after a human confirmed
// the old primary is gone), pulls the replica a last time, and starts
// replicating as the primary.
func (n *Node) Promote(ctx context.Context, force bool) (err error) {
	select {
	case <-n.ready:
	default:
		return ErrNotReady
	}
	// One promote at a time; a second one finds the node promoted.
	n.secondary.promoteMu.Lock()
	defer n.secondary.promoteMu.Unlock()
	if n.currentRole() != config.RoleSecondary {
		return ErrNotSecondary
	}
	opts, err := n.leaseOptions()
	if err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	opts.Force = force
	l, err := lease.Wait(ctx, n.plain, opts,
		func(h *lease.HeldError) { n.log.Info("promote: waiting for the lease", "held", h.Error()) })
	if err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	defer func() {
		if err != nil { // give the lease back: a half-promoted node must not block the old primary
			rctx, cancel := context.WithTimeout(context.Background(), LeaseReleaseTimeout)
			_ = l.Release(rctx)
			cancel()
		}
	}()

	// The last catch-up: whatever the old primary flushed before it stopped.
	if _, err := n.pull(ctx); err != nil {
		return fmt.Errorf("promote: final catch-up: %w", err)
	}
	n.secondary.pullMu.Lock()
	defer n.secondary.pullMu.Unlock()
	n.writes = lease.NewGuard(n.plain)
	n.writes.Bind(l)
	data, err := bucket.Data(ctx, n.writes, n.cfg, bucket.WriteKey)
	if err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	n.data = data
	if err := n.startWriters(ctx); err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	n.holdLease(l)
	n.mu.Lock()
	n.role = config.RolePrimary
	n.mu.Unlock()
	n.board.Update(func(s *status.Status) { s.Role = config.RolePrimary })
	asPrimary := *n.cfg
	asPrimary.Role = config.RolePrimary
	n.board.SetLimits(wiring.StatusLimits(&asPrimary)) // judged as a primary from now on
	n.promoted <- struct{}{}
	if err := n.startSnapshots(context.WithoutCancel(ctx)); err != nil {
		n.log.Error("promote: snapshots not scheduled", "error", err)
	}
	n.log.Info("promoted to primary")
	return nil
}

// currentRole is the node's role now.
func (n *Node) currentRole() config.Role {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.role
}

// sameHost reports whether r comes from this host: from loopback, or from the
// very address it arrived on (STATUS_ADDR bound to one interface's IP).
func sameHost(r *http.Request) bool {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	lhost, _, _ := net.SplitHostPort(local.String())
	return ip.Equal(net.ParseIP(lhost))
}

// servePromote is POST /promote on STATUS_ADDR, what `vwstream promote` calls.
// Only callers on this host may promote, even when STATUS_ADDR listens wider
// for metrics: a failover is a decision for someone on the host.
func (n *Node) servePromote(w http.ResponseWriter, r *http.Request) {
	if !sameHost(r) {
		http.Error(w, "promote is accepted from this host only", http.StatusForbidden)
		return
	}
	err := n.Promote(r.Context(), r.URL.Query().Get("force") == "true")
	switch {
	case errors.Is(err, ErrNotSecondary):
		http.Error(w, err.Error(), http.StatusConflict)
	case errors.Is(err, ErrNotReady):
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	default:
		fmt.Fprintln(w, "promoted: this node is now the primary")
	}
}
