package wiring

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/docker"
	"github.com/vwstream/vwstream/internal/notify"
	"github.com/vwstream/vwstream/internal/update"
)

// UpdateOptions connects to the Docker Engine (DOCKER_HOST) and returns the
// options of one image-update pass; n may be nil. The caller closes the
// returned options' Docker client.
func UpdateOptions(ctx context.Context, cfg *config.Config, n notify.Notifier, log *slog.Logger) (update.Options, error) {
	uc := cfg.Update
	c, err := docker.New(ctx, cfg.Containers.DockerHost)
	if err != nil {
		return update.Options{}, fmt.Errorf("image updates: %w", err)
	}
	self, _ := os.Hostname()
	// In a container, its host name is its id: the Engine says where the
	// data folder's mount comes from. Elsewhere that lookup fails and the
	// folder's own path is what a container would bind.
	var own *docker.ContainerInfo
	if self != "" {
		own, _ = c.Inspect(ctx, self)
	}
	dataFolder, err := filepath.Abs(cfg.DataFolder)
	if err != nil {
		return update.Options{}, fmt.Errorf("image updates: %w", err)
	}
	return update.Options{Docker: c, Registry: &update.Registry{DockerConfig: uc.DockerConfig}, DataMounts: update.DataMounts(own, dataFolder),
		LabelEnable: uc.LabelEnable, Scope: uc.Scope, MonitorOnly: uc.MonitorOnly, HealthTimeout: uc.HealthTimeout,
		StableFor: uc.StableFor, Cleanup: uc.Cleanup, Cooldown: uc.Cooldown, SelfHostname: self, Notifier: n, Secrets: cfg.SecretValues(), Logger: log}, nil
}
