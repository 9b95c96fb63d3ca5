// Package notify tells people what vwstream did: snapshot results (and later
// other events) rendered through title and body templates and sent to shoutrrr
// URLs (NOTIFICATION_URLS). A failing notifier is reported to the caller, who
// logs it; it never fails the work it reports on. URLs carry credentials, so
// they are never logged or put in an error.
package notify

import (
	"context"
	"time"
)

// Levels (NOTIFICATION_LEVEL), from the fewest events to every one.
const (
	LevelError   = "error"   // failures, degraded snapshots and critical alerts
	LevelWarning = "warning" // also warning alerts (the default)
	LevelInfo    = "info"    // every event, successes too
)

// Severities of alerts (Event.Severity).
const (
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Event is one thing to report.
type Event struct {
	Kind         string        // "snapshot", "alert", or the node's own failures
	OK           bool          // the work succeeded
	Name         string        // snapshot name; for an alert, the alert's name
	Size         int64         // bytes
	Duration     time.Duration // how long it took; for a cleared alert, how long it was active
	Degraded     bool          // a snapshot missing attachment files
	Destinations []Outcome     // per destination
	Containers   []Container   // stopped for a snapshot's capture
	Error        string        // why it failed, "" when OK; for an alert, what is wrong
	Severity     string        // an alert's SeverityWarning or SeverityCritical; "" for other events
	Reminder     bool          // an alert still active, notified again after ALERT_REPEAT
	Detail       string        // what happened, in a few lines, for kinds other than snapshot, alert and drill
	Time         time.Time     // when it ended; zero means now
}

// Outcome is one destination's result.
type Outcome struct {
	Name  string
	OK    bool
	Error string
}

// Container is one container stopped for a snapshot and what became of it.
type Container struct {
	Name      string
	Seconds   float64 // how long it was stopped
	Restarted bool
	Error     string // why it was not restarted
}

// Notifier sends events.
type Notifier interface {
	// Notify sends ev where the level says it should go. Its error is for the
	// log only.
	Notify(ctx context.Context, ev Event) error
}

// level is the least verbose level that lets ev through. An alert goes by its
// severity, when it starts and when it clears alike: whoever was told it
// started is told it ended.
func (ev Event) level() string {
	switch {
	case ev.Severity == SeverityCritical:
		return LevelError
	case ev.Severity == SeverityWarning:
		return LevelWarning
	case !ev.OK || ev.Degraded:
		return LevelError
	}
	return LevelInfo
}

// passes reports whether an event of level lvl is sent at the setting.
func passes(lvl, setting string) bool {
	rank := map[string]int{LevelError: 0, LevelWarning: 1, LevelInfo: 2}
	return rank[lvl] <= rank[setting]
}
