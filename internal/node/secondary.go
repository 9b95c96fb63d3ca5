package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/filesync"
	"github.com/vwstream/vwstream/internal/lease"
	"github.com/vwstream/vwstream/internal/restore"
	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/target"
)

// ErrNotSecondary is returned by Promote on a node that is already the primary.
var ErrNotSecondary = errors.New("this node is not a secondary")

// startSecondary brings the data folder to the replica's state and starts the
// child. A secondary never writes to the bucket: it reads db/ and files/, and
// looks at the lease only to report the primary. Persistent secondaries pull
// again every SECONDARY_SYNC_INTERVAL; serverless ones pull once.
func (n *Node) startSecondary(ctx context.Context) error {
	var err error
	if n.data, _, err = target.Data(ctx, n.plain, n.cfg, target.ReadKey); err != nil {
		return err
	}
	if _, err := n.pull(ctx); err != nil {
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
	n.pullMu.Lock()
	defer n.pullMu.Unlock()
	fp, err := n.fingerprint(ctx)
	if err != nil {
		return false, err
	}
	if fp == n.pulled {
		return false, nil
	}
	var down time.Time
	c := n.currentChild()
	res, err := restore.Replica(ctx, restore.Options{
		Store:  n.data,
		Dir:    n.cfg.DataFolder,
		DBName: dbFileName(n.cfg),
		Force:  true,
		Files:  RestoreFiles(n.cfg, n.data),
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
	if c != nil && !down.IsZero() {
		if serr := n.startChild(); serr != nil {
			return false, errors.Join(err, serr)
		}
	}
	if err != nil {
		return false, fmt.Errorf("pull from the replica: %w", err)
	}
	n.pulled = fp
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
	for _, prefix := range []string{dbrepl.KeyPrefix + "/", filesync.FilesPrefix} {
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
func (n *Node) Promote(ctx context.Context, force bool) error {
	if n.currentRole() != config.RoleSecondary {
		return ErrNotSecondary
	}
	l, err := lease.Wait(ctx, n.plain, lease.Options{TTL: n.cfg.Lease.TTL, RenewInterval: n.cfg.Lease.RenewInterval, Force: force, Logger: n.log},
		func(h *lease.HeldError) { n.log.Info("promote: waiting for the lease", "held", h.Error()) })
	if err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	n.mu.Lock()
	n.lease = l
	n.mu.Unlock()
	n.board.AddSource(func(s *status.Status) { s.Lease = status.LeaseOf(l) })

	// The last catch-up: whatever the old primary flushed before it stopped.
	if _, err := n.pull(ctx); err != nil {
		return fmt.Errorf("promote: final catch-up: %w", err)
	}
	n.pullMu.Lock()
	defer n.pullMu.Unlock()
	if n.data, _, err = target.Data(ctx, n.plain, n.cfg, target.WriteKey); err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	if err := n.startWriters(ctx); err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	n.mu.Lock()
	n.role = config.RolePrimary
	n.mu.Unlock()
	n.board.Update(func(s *status.Status) { s.Role = config.RolePrimary })
	n.promoted <- struct{}{}
	n.log.Info("promoted to primary")
	return nil
}

// currentRole is the node's role now.
func (n *Node) currentRole() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.role
}

// servePromote is POST /promote on STATUS_ADDR, what `vwstream promote` calls.
// Only loopback callers may promote, even when STATUS_ADDR listens wider for
// metrics: a failover is a decision for someone on the host.
func (n *Node) servePromote(w http.ResponseWriter, r *http.Request) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		http.Error(w, "promote is accepted from loopback only", http.StatusForbidden)
		return
	}
	err := n.Promote(r.Context(), r.URL.Query().Get("force") == "true")
	switch {
	case errors.Is(err, ErrNotSecondary):
		http.Error(w, err.Error(), http.StatusConflict)
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	default:
		fmt.Fprintln(w, "promoted: this node is now the primary")
	}
}
