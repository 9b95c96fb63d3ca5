// Package node is `vwstream run`: it orders start-up (status, target, lease,
// restore, replication, file sync, the supervised child) and shutdown (child
// first, then the final file sync, the replication flush and the lease), so that
// a graceful stop loses nothing and a crash loses at most the replication
// interval. A primary that loses its lease stops writing at once (fencing).
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vwstream/vwstream/internal/bucket"
	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/filesync"
	"github.com/vwstream/vwstream/internal/lease"
	"github.com/vwstream/vwstream/internal/notify"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/restore"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/vault"
	"github.com/vwstream/vwstream/internal/wiring"
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
	Version string // reported in the status document
	// ChildStopTimeout overrides DefaultChildStopTimeout.
	ChildStopTimeout time.Duration
}

var (
	// ErrStale is returned when the local database is older than the replica.
	ErrStale = errors.New("local database is older than the replica")
	// ErrFenced is returned when the primary lost its lease and stopped writing.
	ErrFenced = errors.New("lease lost: stopped writing to the bucket")
)

// Node is one running vwstream daemon. It holds what Run started, so shutdown
// can stop it in reverse order.
type Node struct {
	opt      Options
	cfg      *config.Config
	log      *slog.Logger
	board    *status.Board
	metrics  *status.Metrics
	server   *status.Server
	notifier *notify.Service
	// quiesce runs the container operations around a snapshot's capture;
	// nil when none are configured; set once at start.
	quiesce snapshot.Quiesce
	plain   objstore.Store // the target, instrumented; set once at start
	// writes is plain behind the lease's guard: what a primary writes through
	// (the data view, snapshots), so no write passes once the lease is not
	// confirmed. The lease itself is written through plain.
	writes *lease.Guard
	// data is the data view of the target (sealed with the bucket key); set at
	// start, and again by a promote under secondary.pullMu.
	data  objstore.Store
	ready chan struct{} // closed once start-up has finished
	// childExit receives when the child ends on its own (not when we stop it
	// to swap in newer data).
	childExit chan struct{}
	// promoted receives once a secondary has become the primary.
	promoted chan struct{}

	// mu guards role, child and everything in primary.
	mu        sync.Mutex
	role      config.Role // promote changes it
	child     *child      // the current child process, nil in sidecar mode
	primary   primaryState
	secondary secondaryState

	// stopping is set once shutdown began: nothing may start a child then.
	stopping atomic.Bool
	// restarts counts the child's restarts for a secondary's swaps.
	restarts atomic.Int64
	// updates schedules image updates (UPDATE_ENABLED); guarded by mu.
	updates *snapshot.Scheduler
}

// primaryState is what a primary writes to the bucket with. Each field is set
// once, at start or by a promote, and read, under Node.mu.
type primaryState struct {
	lease *lease.Lease        // the lease this node holds
	repl  *dbrepl.Replicator  // set once replication has started
	files *filesync.Syncer    // set once file sync has started
	sched *snapshot.Scheduler // set with BACKUP_ENABLED
}

// secondaryState is a secondary's pulling, and its promotion.
type secondaryState struct {
	// pullMu serialises pulls with promote and shutdown; it guards pulled.
	pullMu sync.Mutex
	// pulled fingerprints the replica state last restored.
	pulled string
	// promoteMu makes promotes one at a time.
	promoteMu sync.Mutex
}

// New prepares a node; Run starts it.
func New(opt Options) *Node {
	n := &Node{opt: opt, cfg: opt.Config, log: opt.Logger, ready: make(chan struct{}),
		childExit: make(chan struct{}, 1), promoted: make(chan struct{}, 1), role: opt.Config.Role}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.opt.ChildStopTimeout == 0 {
		n.opt.ChildStopTimeout = DefaultChildStopTimeout
	}
	n.board = status.NewBoard(status.Options{Role: n.cfg.Role, Mode: n.cfg.Mode, Version: opt.Version, Limits: wiring.StatusLimits(n.cfg)})
	n.metrics = status.NewMetrics(n.board)
	notifier, err := wiring.Notifier(n.cfg, n.log)
	if err != nil {
		n.log.Error("notifications are off", "error", err)
	}
	n.notifier = notifier
	return n
}

// Run is New(opt).Run(ctx).
func Run(ctx context.Context, opt Options) error { return New(opt).Run(ctx) }

// Ready is closed once start-up has finished: data restored, replication, file
// sync and the child started.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Status is the node's current status document.
func (n *Node) Status() status.Status { return n.board.Snapshot() }

// Replication reports replication progress; ok is false before it has started.
func (n *Node) Replication() (st dbrepl.Status, ok bool) {
	n.mu.Lock()
	r := n.primary.repl
	n.mu.Unlock()
	if r == nil {
		return st, false
	}
	return r.Status(), true
}

// Run starts the node and blocks until ctx ends (SIGTERM, SIGINT), the child
// exits or the lease is lost; then it shuts down in order. The error reports the
// child's failure and any flush that did not complete.
func (n *Node) Run(ctx context.Context) error {
	// One live process per data folder (lock.go), before anything is served,
	// written or asked of the bucket.
	lock, lockErr := lockDataFolder(n.cfg.DataFolder)
	if lockErr != nil {
		return lockErr
	}
	defer lock.release()
	statusCtx, stopStatus := context.WithCancel(context.WithoutCancel(ctx))
	statusDone := n.serveStatus(statusCtx)
	defer func() { stopStatus(); <-statusDone }()

	if err := n.start(ctx); err != nil {
		serr := n.shutdown(false)
		if ctx.Err() != nil && errors.Is(err, context.Canceled) && serr == nil {
			// A stop asked for during start-up (SIGTERM while restoring) is a
			// stop, not a failed start: what had started was shut down.
			n.log.Info("stopped during start-up")
			return nil
		}
		n.board.SetError("start", err.Error())
		err = errors.Join(err, serr)
		if ctx.Err() == nil { // a refused start (stale volume, lease held, bad key) needs a human
			n.alert("start", err)
		}
		return err
	}
	n.board.SetState(status.StateOK)
	close(n.ready)
	n.startChecks(statusCtx)
	reason, fenced := n.wait(ctx)
	n.log.Info("stopping", "reason", reason)
	n.board.SetState(status.StateStopping)
	err := n.shutdown(fenced)
	if fenced {
		lerr := n.currentLease().Err()
		err = errors.Join(fmt.Errorf("%w: %w", ErrFenced, lerr), err)
		if errors.Is(lerr, lease.ErrTaken) {
			err = errors.Join(err, n.keepAside())
		}
	}
	if _, child := err.(*ChildExitError); err != nil && !child {
		n.alert("shutdown", err)
	}
	return err
}

// start runs the start-up sequence, top to bottom.
func (n *Node) start(ctx context.Context) error {
	q, err := wiring.ContainerOps(ctx, n.cfg, n.log)
	if err != nil {
		return err
	}
	n.quiesce = q
	if err := n.startUpdates(ctx); err != nil {
		return err
	}
	plain, err := bucket.Open(ctx, n.cfg, n.log)
	if err != nil {
		return err
	}
	n.plain = n.metrics.Instrument("target", plain)
	if n.cfg.Server != nil {
		return n.startWithServerDB(ctx)
	}
	if n.cfg.Role == config.RoleSecondary {
		return n.startSecondary(ctx)
	}
	// The bucket key (a second of scrypt) unwraps while the lease is taken
	// and the start-up state is read and any restore planned: it shortens a
	// cold start. Restored data reaches the data folder only once read with
	// the key, and the bucket is written only after both are held.
	n.writes = lease.NewGuard(n.plain)
	data, ready := bucket.DataLater(ctx, n.writes, n.cfg, bucket.WriteKey)
	n.data = data
	if !n.cfg.Sealed() {
		// Without a key, DataLater has looked for sealed data already: a
		// refusal comes before the lease is written.
		if err := ready(ctx); err != nil {
			return err
		}
	}
	if err := n.acquireLease(ctx); err != nil {
		return err
	}
	restored, err := n.prepareData(ctx)
	if err := bucket.AfterKey(ctx, ready, err); err != nil {
		return err
	}
	if restored {
		// The data folder equals the replica now. Vaultwarden boots while the
		// replication engine opens the restored database (litestream snapshots
		// it first, most of a second for 100 MB): its first writes wait in the
		// WAL, which replication captures once running, so a cold start does
		// not pay for that snapshot.
		if err := n.startChild(); err != nil {
			return err
		}
		if err := n.startWriters(ctx); err != nil {
			return err
		}
	} else {
		if err := n.startWriters(ctx); err != nil {
			return err
		}
		if err := n.startChild(); err != nil {
			return err
		}
	}
	return n.startSnapshots(ctx)
}

// startWithServerDB is start for a PostgreSQL or MySQL database: the lease,
// file sync, the child and the scheduled snapshots, no replication.
func (n *Node) startWithServerDB(ctx context.Context) error {
	if err := checkServerDB(n.cfg); err != nil {
		return err
	}
	n.writes = lease.NewGuard(n.plain)
	data, ready := bucket.DataLater(ctx, n.writes, n.cfg, bucket.WriteKey)
	n.data = data
	err := n.acquireLease(ctx)
	if err := bucket.AfterKey(ctx, ready, err); err != nil {
		return err
	}
	if err := os.MkdirAll(n.cfg.DataFolder, 0o750); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	if err := vault.Recover(n.cfg.DataFolder, n.log); err != nil { // an interrupted snapshot restore
		return fmt.Errorf("data folder: %w", err)
	}
	n.startServerDB()
	if err := n.startFileSync(ctx); err != nil {
		return err
	}
	if err := n.startChild(); err != nil {
		return err
	}
	return n.startSnapshots(ctx)
}

// startWriters starts what a primary writes to the bucket with: replication of
// the database and file sync.
func (n *Node) startWriters(ctx context.Context) error {
	if err := n.startReplication(ctx); err != nil {
		return err
	}
	return n.startFileSync(ctx)
}

// serveStatus writes STATUS_FILE and serves STATUS_ADDR until ctx ends; the
// returned channel closes when both have stopped.
func (n *Node) serveStatus(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	if addr := n.cfg.Health.StatusAddr; addr != "" {
		mux := http.NewServeMux()
		mux.Handle("/", status.NewHandler(n.board, n.metrics))
		if h, err := status.PromoteHandler(addr, n.cfg.Health.PromoteToken, filepath.Join(n.cfg.DataFolder, vault.PromoteTokenFile), http.HandlerFunc(n.servePromote)); err != nil {
			n.log.Error("POST /promote not served", "error", err)
		} else {
			mux.Handle("POST /promote", h)
		}
		srv, err := status.Listen(addr, mux, n.log)
		if err != nil {
			n.log.Error("status endpoint not started", "addr", addr, "error", err)
		} else {
			n.server = srv
		}
	}
	go func() {
		defer close(done)
		if path := n.cfg.Health.StatusFile; path != "" {
			n.board.WriteLoop(ctx, path, 0, n.log)
		} else {
			<-ctx.Done()
		}
		if n.server != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = n.server.Shutdown(sctx)
			cancel()
		}
	}()
	return done
}

// acquireLease makes this node the only primary of the prefix. A lease held
// under this data folder's own node id was left by its previous run, killed
// before it could release it (kill -9, OOM, power loss): that one is taken over
// at once instead of making the restart wait out LEASE_TTL. Should that earlier
// process still be alive after all, it is fenced within one renew interval.
func (n *Node) acquireLease(ctx context.Context) error {
	opts, err := n.leaseOptions()
	if err != nil {
		return err
	}
	l, err := lease.Acquire(ctx, n.plain, opts)
	var held *lease.HeldError
	if errors.As(err, &held) && held.Info.Holder.Node == opts.Holder.Node {
		n.log.Warn("taking over the lease this data folder's previous run left behind", "held", held.Info.Holder.String())
		opts.Force = true
		l, err = lease.Acquire(ctx, n.plain, opts)
	}
	if err != nil {
		return err
	}
	n.holdLease(l)
	return nil
}

// leaseOptions are the options of this node's lease, for a start and a promote
// alike: the holder names the data folder's node id, so a crash-restart of the
// same volume recognises the lease it held.
func (n *Node) leaseOptions() (lease.Options, error) {
	id, err := vault.NodeID(n.cfg.DataFolder)
	if err != nil {
		return lease.Options{}, err
	}
	holder := lease.NewHolder()
	holder.Node = id
	return lease.Options{Holder: holder, TTL: n.cfg.Lease.TTL, RenewInterval: n.cfg.Lease.RenewInterval,
		Suspend: n.cfg.Lease.LostAction == config.LostServe, Logger: n.log}, nil
}

// holdLease makes l this node's lease: the guard of its writes checks it and
// the status shows it.
func (n *Node) holdLease(l *lease.Lease) {
	n.writes.Bind(l)
	n.mu.Lock()
	n.primary.lease = l
	n.mu.Unlock()
	n.board.AddSource(func(s *status.Status) { s.Lease = status.LeaseOf(l) })
}

// keepAside moves the database of a primary whose lease another node took
// into a folder of its own in the data folder: its last writes may never have
// reached the bucket, and the next start must restore the new primary's
// replica rather than resume from a database that went another way.
func (n *Node) keepAside() error {
	dir, err := vault.KeepAside(n.cfg.DataFolder, "fenced", dbFiles(n.cfg.DBPath)...)
	if err != nil {
		return fmt.Errorf("keep the fenced database aside: %w", err)
	}
	if dir != "" {
		n.log.Error("another node took the lease: this node's database, with any writes the bucket lacks, is kept in "+dir+
			"; the next start restores the replica; compare with `sqlite3` and re-enter what is missing", "kept", dir)
	}
	return nil
}

// dbFiles are the database file and its companions.
func dbFiles(path string) []string {
	return []string{path, path + "-wal", path + "-shm"}
}

// currentLease is the lease this node holds, nil while it holds none.
func (n *Node) currentLease() *lease.Lease {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.primary.lease
}

// prepareData applies the start-up safety rule to the local database: restore it
// when it is missing and the replica has it, refuse when it is older than the
// replica, and otherwise go on (a missing database is replicated once the
// application creates it). restored reports a start-up restore.
func (n *Node) prepareData(ctx context.Context) (restored bool, err error) {
	if err := os.MkdirAll(n.cfg.DataFolder, 0o750); err != nil {
		return false, fmt.Errorf("data folder: %w", err)
	}
	// A restore interrupted by a crash is completed (or its staged copy
	// dropped) before the state of the folder is judged.
	if err := vault.Recover(n.cfg.DataFolder, n.log); err != nil {
		return false, fmt.Errorf("data folder: %w", err)
	}
	st, err := dbrepl.State(ctx, n.cfg.DBPath, n.data)
	if err != nil {
		return false, err
	}
	n.log.Info("start-up state", "state", st.State.String(), "local_txid", st.LocalTXID, "replica_txid", st.ReplicaTXID)
	if !st.LocalExists {
		// About to restore (or to start empty): not from less than the head promised.
		if err := n.checkHead(ctx, st.ReplicaTXID); err != nil {
			return false, err
		}
	}
	switch st.State {
	case dbrepl.StateStale:
		return false, fmt.Errorf("%w: %s", ErrStale, st.Message)
	case dbrepl.StateRestore:
		return true, n.restoreMissing(ctx)
	}
	return false, nil
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
		Files:  wiring.RestoreFiles(n.cfg, n.data),
		Verify: func(stage string) error { return wiring.CheckHeadFiles(ctx, n.cfg, n.data, stage) },
		Logger: n.log,
	})
	if errors.Is(err, restore.ErrNotEmpty) {
		var db dbrepl.Result
		if db, err = dbrepl.Restore(ctx, dbrepl.RestoreOptions{Store: n.data, OutputPath: n.cfg.DBPath, Logger: n.log}); err == nil {
			res.TXID, res.Timestamp = db.TXID, db.Timestamp
			res.Files, err = wiring.RestoreFiles(n.cfg, n.data)(ctx, n.cfg.DataFolder)
		}
	}
	if err != nil {
		return fmt.Errorf("start-up restore: %w", err)
	}
	n.log.Info("restored before start", "txid", res.TXID, "timestamp", res.Timestamp, "files", res.Files)
	return nil
}

// startReplication starts the litestream engine on the database.
func (n *Node) startReplication(ctx context.Context) error {
	if err := n.runReplicator(ctx); err != nil {
		return err
	}
	n.board.AddSource(func(s *status.Status) {
		n.mu.Lock()
		repl := n.primary.repl
		n.mu.Unlock()
		st := repl.Status()
		s.DB = &status.DB{TXIDLocal: st.LocalTXID, TXIDReplicated: st.ReplicatedTXID,
			LagSeconds: st.Lag.Seconds(), LastSync: st.LastSyncAt, LastError: st.LastError}
	})
	return nil
}

// runReplicator starts a replicator on the database and makes it the node's:
// at start, and again after the database was put back (restorepoint.go).
func (n *Node) runReplicator(ctx context.Context) error {
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
	n.primary.repl = repl
	n.mu.Unlock()
	go n.keepHead(ctx, repl)
	return nil
}

// startFileSync starts watching and uploading the included files.
func (n *Node) startFileSync(ctx context.Context) error {
	opts := wiring.SyncOptions(n.cfg, n.data)
	opts.Logger = n.log
	opts.OnAlarm = func(err error) {
		n.log.Error("file sync refused to delete remote files", "error", err)
		go n.alert("file-sync", err)
	}
	files, err := filesync.Open(ctx, opts)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.primary.files = files
	n.mu.Unlock()
	n.board.AddSource(func(s *status.Status) {
		st := files.Status()
		s.Files = &status.Files{Pending: st.Pending, LastSync: st.LastSync, Uploaded: st.FilesUploaded,
			UploadedBytes: st.BytesUploaded, LastError: st.Error, Alarm: st.AlarmReason}
	})
	return nil
}

// startChild starts the supervised program, if any.
func (n *Node) startChild() error {
	if len(n.opt.Command) == 0 {
		return nil
	}
	cred, err := childCredential(n.cfg.Vaultwarden.RunAs)
	if err != nil {
		return err
	}
	c, err := startChild(n.opt.Command, n.opt.Env, n.opt.Stdout, n.opt.Stderr, cred)
	if err != nil {
		return err
	}
	n.mu.Lock()
	first := n.child == nil
	n.child = c
	n.mu.Unlock()
	go func() {
		<-c.done
		if !c.stopping.Load() {
			select {
			case n.childExit <- struct{}{}:
			default:
			}
		}
	}()
	n.log.Info("started child", "command", n.opt.Command[0], "pid", c.pid())
	if first {
		n.board.AddSource(func(s *status.Status) {
			if c := n.currentChild(); c != nil {
				s.Child = &status.Child{PID: c.pid(), Running: !c.exited(), Restarts: int(n.restarts.Load())}
			}
		})
	}
	return nil
}

// currentChild is the child process now running (or last run), nil without one.
func (n *Node) currentChild() *child {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.child
}

// wait blocks until there is a reason to stop and names it; fenced is true when
// the lease was lost.
func (n *Node) wait(ctx context.Context) (reason string, fenced bool) {
	for {
		var leaseLost <-chan struct{}
		if l := n.currentLease(); l != nil {
			leaseLost = l.Lost()
		}
		select {
		case <-ctx.Done():
			return "signal", false
		case <-n.childExit:
			return "the child exited", false
		case <-leaseLost:
			return "lease lost", true
		case <-n.promoted:
			// Now a primary: watch the lease promote took.
		}
	}
}

// shutdown stops what start started, in order, each step within its budget, and
// joins every failure: a flush that did not finish is an error, not a log line.
// A fenced node writes nothing more: no final sync, no flush, no release.
func (n *Node) shutdown(fenced bool) error {
	var errs []error
	n.stopping.Store(true)
	// A secondary's pull in progress finishes (or gives up) before the child is
	// stopped, so it cannot start a new one behind shutdown's back.
	n.secondary.pullMu.Lock()
	//lint:ignore SA2001 a barrier: waits for a pull in progress, guards nothing
	n.secondary.pullMu.Unlock()
	n.mu.Lock()
	sched := n.primary.sched
	n.mu.Unlock()
	if sched != nil {
		sched.Stop() // a snapshot in progress is cancelled, not left reading the database
	}
	n.stopUpdates() // an update in progress ends with a container running
	stopChild := func() {
		if c := n.currentChild(); c != nil {
			ctx, cancel := context.WithTimeout(context.Background(), n.opt.ChildStopTimeout)
			if err := c.stop(ctx); err != nil {
				errs = append(errs, err)
			}
			cancel()
		}
	}
	// Normally the child stops first, so that its last writes are flushed. A
	// fenced node must not write another byte: its writers stop at once (with
	// no budget, so no final upload) and the child after them.
	if !fenced {
		stopChild()
	}
	n.mu.Lock()
	repl, files := n.primary.repl, n.primary.files
	n.mu.Unlock()
	if files != nil {
		budget := n.cfg.Sync.ShutdownTimeout
		if fenced {
			budget = 0
		}
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		if err := files.Close(ctx); err != nil && !fenced {
			errs = append(errs, fmt.Errorf("final file sync: %w", err))
		}
		cancel()
	}
	if repl != nil {
		budget := n.cfg.Replication.ShutdownTimeout
		if fenced {
			budget = 0
		}
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		if err := repl.Close(ctx); err != nil && !fenced {
			errs = append(errs, fmt.Errorf("final replication flush: %w", err))
		}
		cancel()
	}
	if fenced {
		stopChild()
	}
	if l := n.currentLease(); l != nil && !fenced {
		ctx, cancel := context.WithTimeout(context.Background(), LeaseReleaseTimeout)
		if err := l.Release(ctx); err != nil {
			errs = append(errs, fmt.Errorf("release lease: %w", err))
		}
		cancel()
	}
	for _, err := range errs {
		n.board.SetError("shutdown", err.Error())
	}
	if len(errs) == 1 {
		return errs[0] // keeps a lone *ChildExitError comparable for the exit code
	}
	return errors.Join(errs...)
}
