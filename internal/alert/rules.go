package alert

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/human"
	"github.com/vwstream/vwstream/internal/status"
)

// rules evaluates every rule against doc at now.
func (e *Engine) rules(_ context.Context, doc *status.Status, now time.Time) map[string]finding {
	found := map[string]finding{}
	set := func(name string, f *finding) {
		if f != nil {
			found[name] = *f
		}
	}
	set(ReplicationStalled, e.replicationStalled(doc, now))
	set(SnapshotFailed, snapshotFailed(doc))
	set(SnapshotTooOld, e.snapshotTooOld(doc, now))
	set(DiskLow, e.diskLow())
	set(ChildUnhealthy, e.childUnhealthy(now))
	set(DrillFailed, drillFailed(doc))
	set(UpdateFailed, updateFailed(doc))
	return found
}

// replicationStalled: a primary's changes have waited ReplicationAfter for the
// database replica or the file store.
func (e *Engine) replicationStalled(doc *status.Status, now time.Time) *finding {
	after := e.o.ReplicationAfter
	if after <= 0 || doc.Role == config.RoleSecondary {
		return nil
	}
	var why []string
	if d := doc.DB; d != nil && d.TXIDLocal > d.TXIDReplicated {
		if lag := time.Duration(d.LagSeconds * float64(time.Second)); lag >= after {
			w := fmt.Sprintf("database transactions %d..%d waited %s for the replica", d.TXIDReplicated+1, d.TXIDLocal, human.Duration(lag))
			if d.LastError != "" {
				w += " (" + d.LastError + ")"
			}
			why = append(why, w)
		}
	}
	if f := doc.Files; f != nil && f.Pending > 0 {
		last := f.LastSync
		if last.IsZero() {
			last = doc.StartedAt
		}
		if age := now.Sub(last); !last.IsZero() && age >= after {
			w := fmt.Sprintf("%d changed files waiting, last complete file sync %s ago", f.Pending, human.Duration(age))
			if f.LastError != "" {
				w += " (" + f.LastError + ")"
			}
			why = append(why, w)
		}
	}
	if len(why) == 0 {
		return nil
	}
	return &finding{status.SeverityCritical, "replication stalled over REPLICATION_ALERT_AFTER=" + human.Duration(after) + ": " + strings.Join(why, "; ")}
}

func snapshotFailed(doc *status.Status) *finding {
	if s := doc.Snapshot; s != nil {
		return lastFailed("the last snapshot failed", s.LastResult, s.LastError)
	}
	return nil
}

// lastFailed is a critical finding when the last run of a job failed.
func lastFailed(what, result, lastErr string) *finding {
	if result != status.ResultError {
		return nil
	}
	if lastErr != "" {
		what += ": " + lastErr
	}
	return &finding{status.SeverityCritical, what}
}

// snapshotTooOld counts from start-up when no snapshot was ever made, as the
// health rule does.
func (e *Engine) snapshotTooOld(doc *status.Status, now time.Time) *finding {
	max := e.o.SnapshotMaxAge
	if max <= 0 || doc.Role == config.RoleSecondary {
		return nil
	}
	var last time.Time
	if doc.Snapshot != nil {
		last = doc.Snapshot.LastSuccess
	}
	from := last
	if from.IsZero() {
		from = doc.StartedAt
	}
	if from.IsZero() || now.Sub(from) <= max {
		return nil
	}
	if last.IsZero() {
		return &finding{status.SeverityWarning, fmt.Sprintf("no snapshot made in the %s since start, over BACKUP_MAX_AGE=%s", human.Duration(now.Sub(from)), human.Duration(max))}
	}
	return &finding{status.SeverityWarning, fmt.Sprintf("the newest good snapshot is %s old, over BACKUP_MAX_AGE=%s", human.Duration(now.Sub(last)), human.Duration(max))}
}

// diskLow: warning under DiskFreeMin, critical under a quarter of it.
func (e *Engine) diskLow() *finding {
	min := e.o.DiskFreeMin
	if min <= 0 {
		return nil
	}
	var worst *finding
	var lines []string
	seen := map[string]bool{}
	for _, p := range e.o.DiskPaths {
		p = filepath.Clean(p)
		if seen[p] {
			continue
		}
		seen[p] = true
		free, err := e.o.FreeSpace(p)
		if err != nil {
			e.o.Logger.Debug("free space not known", "path", p, "error", err)
			continue
		}
		if free >= min {
			continue
		}
		sev := status.SeverityWarning
		if free < min/4 {
			sev = status.SeverityCritical
		}
		if worst == nil || sev == status.SeverityCritical {
			worst = &finding{severity: sev}
		}
		lines = append(lines, fmt.Sprintf("%s has %s free", p, bytes(free)))
	}
	if worst == nil {
		return nil
	}
	worst.message = strings.Join(lines, "; ") + ", under DISK_FREE_MIN=" + bytes(min)
	if worst.severity == status.SeverityCritical {
		worst.message += " (critical under " + bytes(min/4) + ")"
	}
	return worst
}

// probeChild asks Vaultwarden's /alive once and remembers since when it fails.
func (e *Engine) probeChild(ctx context.Context) {
	if e.o.Alive == nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := e.o.Alive(pctx)
	cancel()
	if ctx.Err() != nil {
		return // shutting down: not the child's fault
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err == nil {
		e.aliveFailing, e.aliveErr = time.Time{}, ""
		return
	}
	if e.aliveFailing.IsZero() {
		e.aliveFailing = e.o.Clock()
	}
	e.aliveErr = err.Error()
}

func (e *Engine) childUnhealthy(now time.Time) *finding {
	e.mu.Lock()
	since, msg := e.aliveFailing, e.aliveErr
	e.mu.Unlock()
	if e.o.Alive == nil || e.o.UnhealthyAfter <= 0 || since.IsZero() || now.Sub(since) < e.o.UnhealthyAfter {
		return nil
	}
	return &finding{status.SeverityCritical, fmt.Sprintf("Vaultwarden's /alive has failed for %s, over UNHEALTHY_AFTER=%s: %s",
		human.Duration(now.Sub(since)), human.Duration(e.o.UnhealthyAfter), msg)}
}

func drillFailed(doc *status.Status) *finding {
	if d := doc.Drill; d != nil {
		return lastFailed("the last restore drill failed", d.LastResult, d.LastError)
	}
	return nil
}

// updateFailed: the last image-update pass failed or rolled a container back
// (the old version runs again, so this is a warning); it clears with the
// next pass that goes well.
func updateFailed(doc *status.Status) *finding {
	if u := doc.Updates; u != nil && u.LastProblem != "" {
		return &finding{status.SeverityWarning, "image update: " + u.LastProblem}
	}
	return nil
}

// FreeSpace is the number of bytes an unprivileged writer may still use on
// path's file system.
func FreeSpace(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", path, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

func bytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%d kB", n/1000)
}
