package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/update"
	"github.com/vwstream/vwstream/internal/wiring"
)

// flushTimeout bounds the wait for replication and file sync to have the
// stopped container's last writes in the bucket.
const flushTimeout = 2 * time.Minute

// restorePoints is the node's update.Protector: an image update of the
// container labelled vwstream.protected=true (Vaultwarden beside this
// sidecar, on this data folder) runs between a restore point and, on a
// rollback, its data put back. Only a primary replicating a SQLite database
// can do that; any other node refuses, and the container is not updated.
type restorePoints struct{ n *Node }

var _ update.Protector = restorePoints{}

func (p restorePoints) ready() (*dbrepl.Replicator, error) {
	n := p.n
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.role != config.RolePrimary:
		return nil, errors.New("this node is a secondary: only the primary protects the data")
	case n.cfg.Server != nil:
		return nil, errors.New("the database is a server database: its data cannot be put back after a rollback")
	case n.primary.repl == nil:
		return nil, errors.New("replication has not started")
	}
	return n.primary.repl, nil
}

// Snapshot takes a snapshot to the configured destinations, as the schedule
// does, while the old container still serves.
func (p restorePoints) Snapshot(ctx context.Context) (string, error) {
	n := p.n
	if _, err := p.ready(); err != nil {
		return "", err
	}
	namer, err := wiring.Namer(n.cfg)
	if err != nil {
		return "", err
	}
	opts, err := wiring.SnapshotOptions(n.cfg, n.opt.Version, namer, n.notifier, n.log)
	if err != nil {
		return "", err
	}
	opts.Quiesce = n.quiesce
	res, err := snapshot.Run(ctx, opts, wiring.Destinations(ctx, n.cfg, n.writes, n.log))
	n.recordSnapshot(res, err)
	if err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	return res.Name, nil
}

// Mark flushes replication and file sync once the old container stopped,
// and records the transaction its last write is in.
func (p restorePoints) Mark(ctx context.Context) (update.RestorePoint, error) {
	repl, err := p.ready()
	if err != nil {
		return update.RestorePoint{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	if err := repl.Sync(ctx); err != nil {
		return update.RestorePoint{}, fmt.Errorf("flush replication: %w", err)
	}
	if err := p.n.flushFiles(ctx); err != nil {
		return update.RestorePoint{}, err
	}
	st := repl.Status()
	if st.ReplicatedTXID == 0 {
		return update.RestorePoint{}, errors.New("the database has no replicated transaction yet")
	}
	return update.RestorePoint{TXID: st.ReplicatedTXID, Time: time.Now().UTC()}, nil
}

// flushFiles has file sync compare the whole folder with the bucket and
// upload what differs, and waits until nothing is pending.
func (n *Node) flushFiles(ctx context.Context) error {
	n.mu.Lock()
	files := n.primary.files
	n.mu.Unlock()
	if files == nil {
		return nil
	}
	if err := files.Reconcile(ctx); err != nil {
		return fmt.Errorf("flush file sync: %w", err)
	}
	for files.Status().Pending > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("flush file sync: %d files still pending: %w", files.Status().Pending, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// PutBack puts the database back to the restore point when the new version
// moved it. The new version's writes are flushed to the replica first, where
// `vwstream restore --at` still reaches them. The replicator is stopped, the
// database restored from the replica at the point's transaction (staged,
// integrity-checked, swapped in with its WAL and litestream state removed),
// and a new replicator uploads it as a full copy after the replica's newest
// transaction: the put-back state is the replica's head from then on, and a
// later start resumes from it instead of refusing it as an older volume.
func (p restorePoints) PutBack(ctx context.Context, rp update.RestorePoint) (string, error) {
	n := p.n
	repl, err := p.ready()
	if err != nil {
		return "", err
	}
	flushCtx, cancel := context.WithTimeout(ctx, flushTimeout)
	err = repl.Sync(flushCtx)
	cancel()
	if err != nil {
		return "", fmt.Errorf("flush the new version's writes: %w", err)
	}
	now := repl.Status().ReplicatedTXID
	if now == rp.TXID {
		return fmt.Sprintf("the database did not change since the restore point (transaction %d)", rp.TXID), nil
	}
	if err := repl.Close(ctx); err != nil {
		return "", fmt.Errorf("stop replication: %w", err)
	}
	res, rerr := dbrepl.Restore(ctx, dbrepl.RestoreOptions{Store: n.data, OutputPath: n.cfg.DBPath, TXID: rp.TXID, Force: true, Logger: n.log})
	// Replication runs again whatever happened: on the put-back database, or
	// on the untouched one when the restore failed before its swap.
	if err := n.runReplicator(context.WithoutCancel(ctx)); err != nil {
		return "", errors.Join(rerr, fmt.Errorf("restart replication: %w", err))
	}
	if rerr != nil {
		return "", rerr
	}
	n.log.Warn("database put back after a rolled-back image update", "txid", res.TXID, "abandoned_to", now)
	return fmt.Sprintf("put the database back to transaction %d; the new version's transactions %d..%d stay in the replica (`vwstream restore --txid %d` reaches them)",
		res.TXID, rp.TXID+1, now, now), nil
}
