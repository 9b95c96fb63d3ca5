package node

import (
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/status"
)

// recordStopWindow puts the last run's container stop window and spool size
// on the status board (and so in /metrics).
func (n *Node) recordStopWindow(res *snapshot.Result) {
	var longest float64
	var spool int64
	if res != nil {
		for _, c := range res.Containers {
			longest = max(longest, c.Seconds)
		}
		spool = res.SpoolBytes
	}
	n.board.Update(func(s *status.Status) {
		if s.Snapshot != nil {
			s.Snapshot.LastStopSeconds, s.Snapshot.LastSpoolBytes = longest, spool
		}
	})
}
