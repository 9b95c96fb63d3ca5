package status

import (
	"fmt"
	"slices"
	"time"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/human"
)

// DefaultStaleAfter is how old a status document may be before healthcheck says
// the daemon is not updating it (it is rewritten every DefaultWriteInterval).
const DefaultStaleAfter = 60 * time.Second

// Limits are the health rules. A zero duration disables its rule.
type Limits struct {
	// MaxSyncAge bounds replication lag (primary) or the age of the last pull
	// (secondary), and the age of the last complete file sync.
	MaxSyncAge time.Duration
	// MaxSnapshotAge bounds the age of the newest good snapshot (BACKUP_MAX_AGE).
	MaxSnapshotAge time.Duration
	// StaleAfter bounds the age of the document itself (healthcheck only: /readyz
	// always judges a fresh one).
	StaleAfter time.Duration
	// SkipAlerts are alerts that do not count (healthcheck --no-vaultwarden:
	// child_unhealthy, so that a sidecar is not unhealthy for Vaultwarden).
	SkipAlerts []string
}

// Problems lists, one line each, why the node described by s is not healthy at
// now under l; nil when it is. It judges ages against now rather than against the
// document's own time, so an old status file of a dead daemon fails.
func (s *Status) Problems(l Limits, now time.Time) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	switch s.Status {
	case StateStarting:
		add("node is starting")
	case StateStopping:
		add("node is stopping")
	}
	if l.StaleAfter > 0 && s.Timestamp > 0 {
		if age := now.Sub(time.Unix(s.Timestamp, 0)); age > l.StaleAfter {
			add("status is %s old (written %s): is vwstream run alive?", human.Duration(age), s.Datetime)
		}
	}
	// since is the age of t, counting from start-up when t never happened.
	since := func(t time.Time) time.Duration {
		if t.IsZero() {
			t = s.StartedAt
		}
		if t.IsZero() {
			return 0
		}
		return now.Sub(t)
	}
	if max := l.MaxSyncAge; max > 0 && s.DB != nil {
		if s.Role == config.RoleSecondary {
			if age := since(s.DB.LastSync); age > max {
				add("db: last pull %s ago, over %s", human.Duration(age), human.Duration(max))
			}
		} else if lag := time.Duration(s.DB.LagSeconds * float64(time.Second)); lag > max {
			add("db: replication lag %s (transactions %d..%d not in the replica), over HEALTHCHECK_MAX_SYNC_AGE=%s",
				human.Duration(lag), s.DB.TXIDReplicated+1, s.DB.TXIDLocal, human.Duration(max))
		}
	}
	if max := l.MaxSyncAge; max > 0 && s.Files != nil {
		if age := since(s.Files.LastSync); age > max {
			what := "last file sync"
			if s.Files.LastSync.IsZero() {
				what = "no file sync completed since start"
			}
			add("files: %s %s ago, over %s", what, human.Duration(age), human.Duration(max))
		}
	}
	if max := l.MaxSnapshotAge; max > 0 {
		var last time.Time
		if s.Snapshot != nil {
			last = s.Snapshot.LastSuccess
		}
		if age := since(last); age > max {
			if last.IsZero() {
				add("snapshot: none made in the %s since start, over BACKUP_MAX_AGE=%s", human.Duration(age), human.Duration(max))
			} else {
				add("snapshot: newest good snapshot is %s old, over BACKUP_MAX_AGE=%s", human.Duration(age), human.Duration(max))
			}
		}
	}
	if p := s.leaseProblem(); p != "" {
		out = append(out, p)
	}
	if p := s.childProblem(); p != "" {
		out = append(out, p)
	}
	for _, a := range s.Alerts {
		if a.Severity == SeverityCritical && !slices.Contains(l.SkipAlerts, a.Name) {
			add("alert %s: %s", a.Name, a.Message)
		}
	}
	return out
}

// leaseProblem is set when a primary does not hold its lease.
func (s *Status) leaseProblem() string {
	if s.Lease == nil || s.Lease.Ours || s.Role == config.RoleSecondary {
		return ""
	}
	msg := "lease: not held"
	if s.Lease.Error != "" {
		msg = "lease: " + s.Lease.Error
	} else if s.Lease.Holder != "" {
		msg += "; held by " + s.Lease.Holder
	}
	return msg
}

// childProblem is set when the supervised process is not running.
func (s *Status) childProblem() string {
	if s.Child == nil || s.Child.Running {
		return ""
	}
	if s.Child.ExitCode != nil {
		return fmt.Sprintf("vaultwarden: not running (exited with code %d)", *s.Child.ExitCode)
	}
	return "vaultwarden: not running"
}
