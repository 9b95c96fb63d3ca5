package wiring_test

import (
	"os"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/wiring"
)

func TestStatusLimits(t *testing.T) {
	load := func(env ...string) *config.Config {
		cfg, err := config.Load(nil, env, os.ReadFile)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	if got := wiring.StatusLimits(load("BACKUP_ENABLED=true")); got.MaxSyncAge != 10*time.Minute || got.MaxSnapshotAge != 48*time.Hour {
		t.Errorf("primary with backups: %+v", got)
	}
	if got := wiring.StatusLimits(load()); got.MaxSnapshotAge != 0 {
		t.Errorf("primary without backups checks snapshots: %+v", got)
	}
	if got := wiring.StatusLimits(load("NODE_ROLE=secondary", "BACKUP_ENABLED=true", "SECONDARY_SYNC_INTERVAL=3600")); got.MaxSyncAge != 70*time.Minute || got.MaxSnapshotAge != 0 {
		t.Errorf("persistent secondary: %+v; want pulls checked at interval + max age, no snapshots", got)
	}
	if got := wiring.StatusLimits(load("NODE_ROLE=secondary", "DEPLOYMENT_MODE=serverless")); got.MaxSyncAge != 0 {
		t.Errorf("serverless secondary: %+v; want no sync age rule", got)
	}
}
