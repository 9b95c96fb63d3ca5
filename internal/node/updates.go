package node

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vwstream/vwstream/internal/notify"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/update"
	"github.com/vwstream/vwstream/internal/wiring"
)

// startUpdates schedules image updates of labelled containers with
// UPDATE_ENABLED, on every role: each node updates the containers of its own
// Engine. An Engine that does not answer refuses the start, as container
// operations do. Shutdown stops the schedule and waits for a pass in
// progress, whose rollback finishes even when the pass is cancelled.
func (n *Node) startUpdates(ctx context.Context) error {
	if !n.cfg.Update.Enabled {
		return nil
	}
	var nt notify.Notifier
	if n.notifier != nil {
		nt = n.notifier
	}
	o, err := wiring.UpdateOptions(ctx, n.cfg, nt, n.log)
	if err != nil {
		return fmt.Errorf("UPDATE_ENABLED: %w", err)
	}
	o.Protect, o.Memory = restorePoints{n}, &update.Memory{}
	n.log.Info("image updates on", "schedule", n.cfg.Update.Cron, "monitor_only", o.MonitorOnly)
	var (
		mu     sync.Mutex
		counts status.Updates
		// rollbacks keeps each container's rollback report while later passes
		// hold the image back, so that last_problem keeps its details (the
		// restore point, the abandoned transactions) until the tag moves on.
		rollbacks = map[string]string{}
	)
	n.board.AddSource(func(s *status.Status) {
		mu.Lock()
		c := counts
		mu.Unlock()
		s.Updates = &c
	})
	job := func(ctx context.Context) error {
		rep, err := o.Run(ctx)
		mu.Lock()
		defer mu.Unlock()
		counts.LastCheck = time.Now()
		if err != nil {
			counts.Failures++
			counts.LastProblem = "the update pass failed: " + err.Error()
			n.log.Warn("image update pass failed: " + err.Error())
			return err
		}
		var problems []string
		for _, it := range rep.Items {
			counts.Checks++
			held := it.Action == update.ActionSkipped && it.HeldBack
			switch it.Action {
			case update.ActionUpdated:
				counts.Updated++
			case update.ActionRolledBack:
				counts.RolledBack++
				rollbacks[it.Container] = update.Describe(it)
				problems = append(problems, rollbacks[it.Container])
			case update.ActionFailed:
				counts.Failures++
				problems = append(problems, update.Describe(it))
			}
			switch {
			case held: // the rollback stays news until the tag moves on
				d := update.Describe(it)
				if r := rollbacks[it.Container]; r != "" {
					d = r + "\n" + d
				}
				problems = append(problems, d)
			case it.Action != update.ActionRolledBack:
				delete(rollbacks, it.Container)
			}
			if it.Action != update.ActionUpToDate {
				n.log.Info("image update: "+update.Describe(it), "container", it.Container, "action", it.Action)
			}
		}
		counts.LastProblem = strings.Join(problems, "; ")
		return nil
	}
	s := snapshot.NewScheduler(n.cfg.Update.Schedule, false, job, n.log)
	s.Name = "image update pass"
	s.Start(ctx)
	n.mu.Lock()
	n.updates = s
	n.mu.Unlock()
	return nil
}

// stopUpdates stops the schedule and waits for a pass in progress.
func (n *Node) stopUpdates() {
	n.mu.Lock()
	s := n.updates
	n.mu.Unlock()
	if s != nil {
		s.Stop()
	}
}
