package config_test

import (
	"testing"
	"time"
)

// TestUpdate_ScheduleForms: UPDATE_SCHEDULE takes BACKUP_CRON's forms,
// Watchtower's 6-field WATCHTOWER_SCHEDULE and WATCHTOWER_POLL_INTERVAL's
// seconds.
func TestUpdate_ScheduleForms(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for env, want := range map[string]time.Time{
		"UPDATE_SCHEDULE=30 4 * * *":       time.Date(2026, 1, 1, 4, 30, 0, 0, time.UTC),
		"WATCHTOWER_SCHEDULE=15 0 4 * * *": time.Date(2026, 1, 1, 4, 0, 15, 0, time.UTC),
		"WATCHTOWER_POLL_INTERVAL=3600":    from.Add(time.Hour),
		"UPDATE_SCHEDULE=@every 10m":       from.Add(10 * time.Minute),
	} {
		c := mustLoad(t, nil, env, "TZ=UTC")
		if got := c.Update.Schedule.Next(from); !got.Equal(want) {
			t.Errorf("%s: next %s, want %s", env, got, want)
		}
	}
	if c := mustLoad(t, nil, "HOME=/home/u"); c.Update.DockerConfig != "/home/u/.docker" || !c.Update.LabelEnable || c.Update.Enabled {
		t.Errorf("defaults: %+v", c.Update)
	}
}
