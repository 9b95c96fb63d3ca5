// Package node is `vwstream run`: it orders start-up (target, lease, restore,
// replication, file sync, the supervised child) and shutdown (child first, then
// the final file sync, the replication flush and the lease), so that a graceful
// stop loses nothing and a crash loses at most the replication interval.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/filesync"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/restore"
	"github.com/vwstream/vwstream/internal/target"
)

// Shutdown budget: the child gets ChildStopTimeout after SIGTERM, then file sync
// gets SYNC_SHUTDOWN_TIMEOUT, replication LITESTREAM_SHUTDOWN_TIMEOUT and the
// lease LeaseReleaseTimeout, one after the other. ShutdownBudget adds them up; a
// container's stop_grace_period must be longer.
const (
	DefaultChildStopTimeout = 10 * time.Second
	LeaseReleaseTimeout     = 5 * time.Second
)

// ShutdownBudget is the longest a graceful stop of the node can take.
func ShutdownBudget(cfg *config.Config) time.Duration {
	return DefaultChildStopTimeout + cfg.Sync.ShutdownTimeout + cfg.Replication.ShutdownTimeout + LeaseReleaseTimeout
}

// Options are what `vwstream run` hands the node besides the configuration.
type Options struct {
	Config  *config.Config
	Command []string // the program to supervise; empty runs as a sidecar
	Env     []string // the child's environment
	Stdout  io.Writer
	Stderr  io.Writer
	Logger  *slog.Logger
	// ChildStopTimeout overrides DefaultChildStopTimeout.
	ChildStopTimeout time.Duration
}

// ErrStale is returned when the local database is older than the replica.
var ErrStale = errors.New("local database is older than the replica")

// Node is one running vwstream daemon. It holds what Run started, so shutdown
// can stop it in reverse order.
type Node struct {
	opt   Options
	cfg   *config.Config
	log   *slog.Logger
	plain objstore.Store
	data  objstore.Store
	child *child

	ready chan struct{} // closed once start-up has finished

	mu    sync.Mutex
	repl  *dbrepl.Replicator // set once replication has started
	files *filesync.Syncer   // set once file sync has started
}

// New prepares a node; Run starts it.
func New(opt Options) *Node {
	n := &Node{opt: opt, cfg: opt.Config, log: opt.Logger, ready: make(chan struct{})}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.opt.ChildStopTimeout == 0 {
		n.opt.ChildStopTimeout = DefaultChildStopTimeout
	}
	return n
}

// Ready is closed once start-up has finished: data restored, replication and
// the child started.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Files reports file sync progress; ok is false before it has started.
func (n *Node) Files() (st filesync.Status, ok bool) {
	n.mu.Lock()
	f := n.files
	n.mu.Unlock()
	if f == nil {
		return st, false
	}
	return f.Status(), true
}

// Run is New(opt).Run(ctx).
func Run(ctx context.Context, opt Options) error { return New(opt).Run(ctx) }

// Replication reports replication progress; ok is false before it has started.
func (n *Node) Replication() (st dbrepl.Status, ok bool) {
	n.mu.Lock()
	r := n.repl
	n.mu.Unlock()
	if r == nil {
		return st, false
	}
	return r.Status(), true
}

// Run starts the node and blocks until ctx ends (SIGTERM, SIGINT), the child
// exits, or replication fails for good; then it shuts down in order. The error
// reports the child's failure and any flush that did not complete.
func (n *Node) Run(ctx context.Context) error {
	if err := n.start(ctx); err != nil {
		return errors.Join(err, n.shutdown())
	}
	close(n.ready)
	n.log.Info("stopping", "reason", n.wait(ctx))
	return n.shutdown()
}

// start runs the start-up sequence, top to bottom.
func (n *Node) start(ctx context.Context) error {
	var err error
	if n.plain, err = target.Open(ctx, n.cfg, n.log); err != nil {
		return err
	}
	if n.data, _, err = target.Data(ctx, n.plain, n.cfg, target.WriteKey); err != nil {
		return err
	}
	if err := n.prepareData(ctx); err != nil {
		return err
	}
	repl, err := dbrepl.New(dbrepl.Options{
		DBPath:          n.cfg.DBPath,
		Store:           n.data,
		SyncInterval:    n.cfg.Replication.SyncInterval,
		ShutdownTimeout: n.cfg.Replication.ShutdownTimeout,
		Logger:          n.log,
	})
	if err != nil {
		return err
	}
	if err := repl.Start(ctx); err != nil {
		return err
	}
	n.mu.Lock()
	n.repl = repl
	n.mu.Unlock()

	fopts := syncOptions(n.cfg, n.data)
	fopts.Logger = n.log
	fopts.OnAlarm = func(err error) { n.log.Error("file sync refused to delete remote files", "error", err) }
	files, err := filesync.Open(ctx, fopts)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.files = files
	n.mu.Unlock()
	if len(n.opt.Command) > 0 {
		if n.child, err = startChild(n.opt.Command, n.opt.Env, n.opt.Stdout, n.opt.Stderr); err != nil {
			return err
		}
		n.log.Info("started child", "command", n.opt.Command[0], "pid", n.child.pid())
	}
	return nil
}

// prepareData applies the start-up safety rule to the local database: restore it
// when it is missing and the replica has it, refuse when it is older than the
// replica, and otherwise go on (a missing database is replicated once the
// application creates it).
func (n *Node) prepareData(ctx context.Context) error {
	if err := os.MkdirAll(n.cfg.DataFolder, 0o750); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	st, err := dbrepl.State(ctx, n.cfg.DBPath, n.data)
	if err != nil {
		return err
	}
	n.log.Info("start-up state", "state", st.State.String(), "local_txid", st.LocalTXID, "replica_txid", st.ReplicaTXID)
	switch st.State {
	case dbrepl.StateStale:
		return fmt.Errorf("%w: %s", ErrStale, st.Message)
	case dbrepl.StateRestore:
		return n.restoreMissing(ctx)
	}
	return nil
}

// restoreMissing restores the database and files before anything else starts.
// Into an empty data folder they are staged and moved in together; a folder that
// already holds other data (config.json, attachments) keeps it, and the
// database and the stored files are restored beside it.
func (n *Node) restoreMissing(ctx context.Context) error {
	dbDir, dbName := filepath.Split(n.cfg.DBPath)
	res, err := restore.Replica(ctx, restore.Options{
		Store:  n.data,
		Dir:    filepath.Clean(dbDir),
		DBName: dbName,
		Files:  RestoreFiles(n.cfg, n.data),
		Logger: n.log,
	})
	if errors.Is(err, restore.ErrNotEmpty) {
		var db dbrepl.Result
		if db, err = dbrepl.Restore(ctx, dbrepl.RestoreOptions{Store: n.data, OutputPath: n.cfg.DBPath, Logger: n.log}); err == nil {
			res.TXID, res.Timestamp = db.TXID, db.Timestamp
			res.Files, err = RestoreFiles(n.cfg, n.data)(ctx, n.cfg.DataFolder)
		}
	}
	if err != nil {
		return fmt.Errorf("start-up restore: %w", err)
	}
	n.log.Info("restored before start", "txid", res.TXID, "timestamp", res.Timestamp, "files", res.Files)
	return nil
}

// wait blocks until there is a reason to stop and names it.
func (n *Node) wait(ctx context.Context) string {
	var childDone <-chan struct{}
	if n.child != nil {
		childDone = n.child.done
	}
	select {
	case <-ctx.Done():
		return "signal"
	case <-childDone:
		return "the child exited"
	}
}

// shutdown stops what start started, in order, each step within its budget, and
// joins every failure: a flush that did not finish is an error, not a log line.
func (n *Node) shutdown() error {
	var errs []error
	if n.child != nil {
		ctx, cancel := context.WithTimeout(context.Background(), n.opt.ChildStopTimeout)
		if err := n.child.stop(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	n.mu.Lock()
	repl, files := n.repl, n.files
	n.mu.Unlock()
	if files != nil {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Sync.ShutdownTimeout)
		if err := files.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("final file sync: %w", err))
		}
		cancel()
	}
	if repl != nil {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Replication.ShutdownTimeout)
		if err := repl.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("final replication flush: %w", err))
		}
		cancel()
	}
	if len(errs) == 1 {
		return errs[0] // keeps a lone *ChildExitError comparable for the exit code
	}
	return errors.Join(errs...)
}
