package config

import (
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// UpdateConfig drives image updates of labelled containers (`vwstream update`
// and the schedule in `vwstream run`).
type UpdateConfig struct {
	Enabled       bool
	Cron          string        // as given
	Schedule      cron.Schedule // Cron parsed in Config.Location
	MonitorOnly   bool
	HealthTimeout time.Duration
	StableFor     time.Duration
	Cleanup       bool
	Cooldown      time.Duration // UPDATE_COOLDOWN: minimum age of a new image
	LabelEnable   bool          // WATCHTOWER_LABEL_ENABLE: only labelled containers
	Scope         string        // UPDATE_SCOPE: only containers labelled with this scope
	DockerConfig  string        // folder of the Docker config file; "" resolved to $HOME/.docker
}

// acceptUpdateCron is BACKUP_CRON's forms plus Watchtower's six fields.
const acceptUpdateCron = acceptCron + ", 6-field cron with seconds first (Watchtower's form, e.g. 0 0 4 * * *), or whole seconds between checks (86400)"

// parseUpdateCron accepts the 5-field cron and descriptors BACKUP_CRON does,
// WATCHTOWER_SCHEDULE's 6-field form whose first field is seconds, and
// WATCHTOWER_POLL_INTERVAL's whole seconds.
func parseUpdateCron(s string) (cron.Schedule, error) {
	if secs, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && secs > 0 {
		return cron.ParseStandard("@every " + strconv.Itoa(secs) + "s") // WATCHTOWER_POLL_INTERVAL
	}
	if !strings.HasPrefix(strings.TrimSpace(s), "@") && len(strings.Fields(s)) == 6 {
		return cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow).Parse(s)
	}
	return cron.ParseStandard(s)
}

// checkUpdate parses UPDATE_SCHEDULE in TZ and resolves DOCKER_CONFIG's
// default the way the Docker CLI does.
func (l *loader) checkUpdate() error {
	c := l.c
	sched, err := parseUpdateCron(c.Update.Cron)
	if err != nil {
		return c.errFor("UPDATE_SCHEDULE", "not a schedule: "+err.Error(), acceptUpdateCron)
	}
	if spec, ok := sched.(*cron.SpecSchedule); ok && !strings.Contains(c.Update.Cron, "TZ=") {
		spec.Location = c.Location
	}
	c.Update.Schedule = sched
	if c.Update.DockerConfig == "" && l.env["HOME"] != "" {
		c.Update.DockerConfig = filepath.Join(l.env["HOME"], ".docker")
	}
	return nil
}
