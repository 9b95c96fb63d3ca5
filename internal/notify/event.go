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

// Levels (NOTIFICATION_LEVEL).
const (
	LevelError = "error" // failures and degraded snapshots only
	LevelInfo  = "info"  // every event
)

// Event is one thing to report.
type Event struct {
	Kind         string        // "snapshot"
	OK           bool          // the work succeeded
	Name         string        // snapshot name
	Size         int64         // bytes
	Duration     time.Duration // how long it took
	Degraded     bool          // a snapshot missing attachment files
	Destinations []Outcome     // per destination
	Containers   []Container   // stopped for a snapshot's capture
	Error        string        // why it failed, "" when OK
	Detail       string        // what happened, in a few lines, for kinds other than snapshot
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

// important reports whether an event passes the error level.
func (ev Event) important() bool { return !ev.OK || ev.Degraded }
