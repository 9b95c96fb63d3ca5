package wiring

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/docker"
	"github.com/vwstream/vwstream/internal/quiesce"
	"github.com/vwstream/vwstream/internal/snapshot"
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
