package dbrepl

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultWALQuietPeriod is how long the WAL must go unwritten after a change
// before the replicator uploads it: a commit is durable about this long (plus
// the upload) after it lands, instead of waiting for the next sync tick. A
// sustained burst never goes quiet, so it is uploaded by the tick, at most
// once per SyncInterval, as before.
const DefaultWALQuietPeriod = 50 * time.Millisecond

// watchWAL reports changes of the database's WAL file on the returned
// channel (buffered, coalesced: one pending wake stands for any number of
// writes) until ctx ends. It watches the folder, not the file, so a WAL that
// is deleted and created again (SQLite removes it when the last connection
// closes) is still seen. It returns nil when the folder cannot be watched;
// the sync tick then carries replication alone.
func (r *Replicator) watchWAL(ctx context.Context) <-chan struct{} {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		r.opt.Logger.Warn("cannot watch the WAL; syncing on the interval only", "db", r.opt.DBPath, "error", err)
		return nil
	}
	if err := w.Add(filepath.Dir(r.opt.DBPath)); err != nil {
		_ = w.Close()
		r.opt.Logger.Warn("cannot watch the WAL; syncing on the interval only", "db", r.opt.DBPath, "error", err)
		return nil
	}
	wal := r.opt.DBPath + "-wal"
	wake := make(chan struct{}, 1)
	go func() {
		defer func() { _ = w.Close() }()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Name != wal || !ev.Has(fsnotify.Write|fsnotify.Create) {
					continue
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
				// An overflow may have dropped WAL events: wake anyway.
			}
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()
	return wake
}
