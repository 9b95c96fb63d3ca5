package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/status"
)

// A PostgreSQL or MySQL/MariaDB database (DATABASE_URL naming a server) is
// protected by the scheduled snapshots alone: no litestream, no start-up
// restore of a database (the server keeps its own data), file sync as usual.
// Its recovery point is the snapshot interval.

// checkServerDB refuses what a server database cannot do.
func checkServerDB(cfg *config.Config) error {
	if cfg.Role == config.RoleSecondary {
		return errors.New("NODE_ROLE=secondary: a secondary restores a replicated SQLite database; with a PostgreSQL or MySQL DATABASE_URL run one primary (the database server is shared)")
	}
	if !cfg.Backup.Enabled {
		return errors.New("BACKUP_ENABLED=false: a PostgreSQL or MySQL database is protected by snapshots alone; enable them")
	}
	return nil
}

// snapshotEvery is the interval of a schedule, measured between its next two runs.
func snapshotEvery(cfg *config.Config, now time.Time) time.Duration {
	if cfg.Backup.Schedule == nil {
		return 0
	}
	next := cfg.Backup.Schedule.Next(now)
	return cfg.Backup.Schedule.Next(next).Sub(next)
}

// startServerDB puts the database row on the status board: snapshots every
// interval and the time of the newest good dump.
func (n *Node) startServerDB() {
	every := snapshotEvery(n.cfg, time.Now())
	desc := fmt.Sprintf("%s %s (%s), snapshots every %s (BACKUP_CRON=%s)", n.cfg.Server.Kind, n.cfg.Server.Database, n.cfg.Server.Addr(), every, n.cfg.Backup.Cron)
	n.board.AddSource(func(s *status.Status) {
		d := &status.DB{Server: desc, SnapshotEvery: every.Seconds()}
		if s.Snapshot != nil {
			d.LastSync = s.Snapshot.LastSuccess
			if s.Snapshot.LastResult == status.ResultError {
				d.LastError = s.Snapshot.LastError
			}
		}
		s.DB = d
	})
	n.log.Info("database server: protected by snapshots, no replication", "database", n.cfg.Server.String(), "every", every)
}
