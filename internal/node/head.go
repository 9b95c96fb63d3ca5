package node

import (
	"context"
	"time"

	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/head"
	"github.com/vwstream/vwstream/internal/vault"
)

// keepHead advances the replica's head (internal/head) while this node
// replicates: every head.DefaultInterval, to the newest transaction known
// durable in the bucket, under this node's lease epoch. It ends when the
// replicator stops (ctx may be a promote request's, which ends sooner).
func (n *Node) keepHead(ctx context.Context, repl *dbrepl.Replicator) {
	ctx = context.WithoutCancel(ctx)
	w := head.NewWriter(n.data)
	id, _ := vault.NodeID(n.cfg.DataFolder)
	t := time.NewTicker(head.DefaultInterval)
	defer t.Stop()
	for {
		<-t.C
		st := repl.Status()
		if !st.Running {
			return
		}
		l := n.currentLease()
		txid := st.ReplicatedTXID
		if txid == 0 || l == nil {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, head.DefaultInterval)
		_, err := w.Advance(actx, head.Head{TXID: txid, Epoch: l.Info().Epoch, Node: id})
		cancel()
		if err != nil {
			n.log.Warn("replica head not advanced", "error", err)
		}
	}
}

// checkHead refuses a start-up restore from a replica older than its head.
func (n *Node) checkHead(ctx context.Context, replicaTXID uint64) error {
	return head.Check(ctx, n.data, replicaTXID)
}
