package node

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/docker"
	"github.com/vwstream/vwstream/internal/quiesce"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/status"
)

// ContainerOps connects to the Docker Engine when container operations are
// configured (a label variable is set) and returns the snapshot.Quiesce that
// runs them around each capture; nil when none are configured. An Engine that
// does not answer is an error: the start (or the backup) is refused rather
// than snapshots taken without stopping what the user labelled.
func ContainerOps(ctx context.Context, cfg *config.Config, log *slog.Logger) (snapshot.Quiesce, error) {
	cc := cfg.Containers
	if !cc.Enabled {
		return nil, nil
	}
	c, err := docker.New(ctx, cc.DockerHost)
	if err != nil {
		return nil, fmt.Errorf("container operations (BACKUP_STOP_DURING_BACKUP_LABEL or EXEC_LABEL is set): %w", err)
	}
	log.Info("container operations on", "docker_host", cc.DockerHost, "engine", c.Engine().Version, "api", c.APIVersion(),
		"stop_label", cc.StopLabel, "exec_label", cc.ExecLabel)
	return quiesce.Options{Docker: c, StopLabel: cc.StopLabel, ExecLabel: cc.ExecLabel,
		Secrets: cfg.SecretValues(), Logger: log}.Quiesce, nil
}

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
