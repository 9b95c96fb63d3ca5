package wiring

import (
	"context"
	"fmt"
	"log/slog"
	"os"

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
	return update.Options{Docker: c, Registry: &update.Registry{DockerConfig: uc.DockerConfig},
		LabelEnable: uc.LabelEnable, MonitorOnly: uc.MonitorOnly, HealthTimeout: uc.HealthTimeout,
		StableFor: uc.StableFor, Cleanup: uc.Cleanup, Cooldown: uc.Cooldown, SelfHostname: self, Notifier: n, Secrets: cfg.SecretValues(), Logger: log}, nil
}
