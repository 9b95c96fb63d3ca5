package node

import (
	"context"
	"time"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/notify"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/wiring"
)

// startSnapshots schedules snapshots on a primary with BACKUP_ENABLED. Each run
// reports to the status board; the snapshot package notifies its own results.
func (n *Node) startSnapshots(ctx context.Context) error {
	if !n.cfg.Backup.Enabled || n.currentRole() != config.RolePrimary {
		return nil
	}
	namer, err := wiring.Namer(n.cfg)
	if err != nil {
		return err
	}
	opts, err := wiring.SnapshotOptions(n.cfg, n.opt.Version, namer, n.notifier, n.log)
	if err != nil {
		return err
	}
	opts.Quiesce = n.quiesce
	// The age of the newest snapshot counts from when it was made, not from
	// this start, so a node that restarts often still shows missed backups.
	if infos, err := snapshot.List(ctx, n.plain, opts.Namer); err == nil && len(infos) > 0 {
		last := infos[0]
		n.board.Update(func(s *status.Status) {
			s.Snapshot = &status.Snapshot{LastTime: last.Time, LastSuccess: last.Time, LastResult: status.ResultOK, LastName: last.Name, LastSize: last.Size}
		})
	}
	pinger := wiring.Pinger(n.cfg, n.log)
	job := func(ctx context.Context) error {
		return pinger.Around(ctx, "snapshot", func() error {
			// The node's own instrumented store, behind the lease: snapshot
			// uploads show in /metrics, and stop with the primary's other writes.
			dests := wiring.Destinations(ctx, n.cfg, n.writes, n.log)
			res, err := snapshot.Run(ctx, opts, dests)
			n.recordSnapshot(res, err)
			return err
		})
	}
	sched := snapshot.NewScheduler(n.cfg.Backup.Schedule, n.cfg.Backup.OnStartup, job, n.log)
	sched.Start(ctx)
	n.mu.Lock()
	n.primary.sched = sched
	n.mu.Unlock()
	return nil
}

// recordSnapshot puts a run's outcome on the status board.
func (n *Node) recordSnapshot(res *snapshot.Result, err error) {
	n.board.Update(func(s *status.Status) {
		if s.Snapshot == nil {
			s.Snapshot = &status.Snapshot{}
		}
		s.Snapshot.LastTime = time.Now()
		if err != nil {
			s.Snapshot.LastResult, s.Snapshot.LastError = status.ResultError, err.Error()
			return
		}
		s.Snapshot.LastResult, s.Snapshot.LastError = status.ResultOK, ""
		s.Snapshot.LastSuccess = res.Time
		s.Snapshot.LastName, s.Snapshot.LastSize = res.Name, res.Size
	})
	n.recordStopWindow(res)
	if err != nil {
		n.board.SetError("snapshot", err.Error())
	} else {
		n.board.SetError("snapshot", "")
	}
}

// alert notifies a failure of the node itself (a flush that did not finish, a
// refused mass deletion, a lost lease). A failing notifier is logged only.
func (n *Node) alert(kind string, err error) {
	if n.notifier == nil || err == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if nerr := n.notifier.Notify(ctx, notify.Event{Kind: kind, Error: err.Error(), Time: time.Now()}); nerr != nil {
		n.log.Warn("notification not sent", "kind", kind, "error", nerr)
	}
}
