// Package dbrepl replicates the Vaultwarden SQLite database continuously to an
// object store with the embedded Litestream engine, and restores it, to the
// latest transaction or to a point in time. It is the only package that
// imports litestream, whose library API is declared unstable.
package dbrepl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"

	"github.com/vwstream/vwstream/internal/objstore"
)

// Replication defaults. Litestream's own defaults poll the replica even when
// nothing changes: its L0 retention monitor lists two levels every 15 s
// (480 LIST requests an hour on an idle database). Everything else it does
// while idle is local or answered from its in-memory cache, so the knob that
// matters for an idle node's bill is that one; the others keep litestream's
// values, whose point-in-time precision (30 s, 5 min, 1 h after compaction)
// the documentation promises.
const (
	// DefaultSyncInterval is how often the WAL is read and new transactions
	// are uploaded (LITESTREAM_SYNC_INTERVAL) during a sustained burst, and
	// the fallback tick; a change of the WAL followed by a quiet period is
	// uploaded sooner (DefaultWALQuietPeriod). Ticks cost no request when
	// nothing was written.
	DefaultSyncInterval = time.Second

	// DefaultShutdownTimeout bounds the final flush on Close
	// (LITESTREAM_SHUTDOWN_TIMEOUT).
	DefaultShutdownTimeout = 30 * time.Second

	// DefaultL0RetentionCheckInterval replaces litestream's 15 s. Level-0 files
	// are also pruned after every L1 compaction, which happens only when
	// something was written, so the periodic check only collects the few
	// files left when writes stop: hourly is enough and costs 2 LISTs an hour.
	DefaultL0RetentionCheckInterval = time.Hour

	// DefaultL0Retention keeps level-0 files (one per sync, full precision for
	// point-in-time restore) this long after they are compacted (litestream's value).
	DefaultL0Retention = litestream.DefaultL0Retention

	// DefaultSnapshotInterval is how often a full snapshot is written when the
	// database changed (litestream's value); restores start from the latest one.
	DefaultSnapshotInterval = litestream.DefaultSnapshotInterval

	// DefaultRetention is how long snapshots, and so point-in-time restore,
	// reach back (litestream's value).
	DefaultRetention = litestream.DefaultSnapshotRetention
)

// maxSyncBackoff caps the wait between retries after sync errors.
const maxSyncBackoff = time.Minute

// DefaultCompactionLevels are litestream's: 30 s, 5 min and 1 h. An idle node
// makes no request for them, since litestream answers "anything new?" from
// its cache of each level's latest file.
var DefaultCompactionLevels = []time.Duration{30 * time.Second, 5 * time.Minute, time.Hour}

// Options configure a Replicator. Zero values take the defaults above.
type Options struct {
	DBPath          string         // the SQLite database (WAL mode)
	Store           objstore.Store // replica objects go under layout.DB
	SyncInterval    time.Duration
	ShutdownTimeout time.Duration
	// WALQuietPeriod is how long the WAL must rest after a change before it
	// is uploaded without waiting for the tick (DefaultWALQuietPeriod).
	WALQuietPeriod time.Duration

	L0Retention              time.Duration
	L0RetentionCheckInterval time.Duration
	SnapshotInterval         time.Duration
	Retention                time.Duration
	CompactionLevels         []time.Duration // intervals of levels 1..n

	Logger *slog.Logger
}

// Replicator replicates one database while it is started.
type Replicator struct {
	opt    Options
	client *replicaClient

	mu        sync.Mutex
	db        *litestream.DB
	lsStore   *litestream.Store
	baseTXID  ltx.TXID // replica position found at start
	closed    bool
	startedAt time.Time
	cancel    context.CancelFunc
	done      chan struct{}

	syncStart atomic.Int64 // unix nanos when the sync in progress began; 0 when idle

	// syncMu makes captures one at a time, so the continuity check sees the
	// files it proves unchanged until they are uploaded.
	syncMu         sync.Mutex
	continuityBase ltx.TXID  // last transaction trusted at start (continuity.go)
	proven         bool      // the first files written after start are proven
	legacy         bool      // state folder without a continuity marker: write a full copy
	markedTXID     ltx.TXID  // last transaction recorded in the continuity marker
	lastCheckpoint time.Time // the time-based checkpoint's last run (checkpointIfDue)

	statMu     sync.Mutex
	lastSyncAt time.Time // replica confirmed caught up with the WAL
	lastErr    error
	lastErrAt  time.Time
}

// Status describes replication progress for the status file and metrics.
type Status struct {
	Running        bool
	LocalTXID      uint64        // last transaction litestream captured from the WAL
	ReplicatedTXID uint64        // last transaction known durable in the store
	LastSyncAt     time.Time     // last time the replica was confirmed caught up
	LastUploadAt   time.Time     // last successful upload
	LastError      string        // last sync error, cleared by a successful sync
	LastErrorAt    time.Time     //
	Lag            time.Duration // zero when caught up, else time since LastSyncAt
}

// UnsyncedError reports transactions left only on the local disk at Close.
type UnsyncedError struct {
	LocalTXID, ReplicatedTXID uint64
	Err                       error
}

func (e *UnsyncedError) Error() string {
	msg := fmt.Sprintf("replication stopped with transactions %d..%d not uploaded", e.ReplicatedTXID+1, e.LocalTXID)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *UnsyncedError) Unwrap() error { return e.Err }

// New validates opt and returns a Replicator that is not started yet.
func New(opt Options) (*Replicator, error) {
	if opt.DBPath == "" {
		return nil, errors.New("new replicator: database path required")
	}
	if opt.Store == nil {
		return nil, errors.New("new replicator: store required")
	}
	abs, err := filepath.Abs(opt.DBPath)
	if err != nil {
		return nil, fmt.Errorf("new replicator: %w", err)
	}
	opt.DBPath = abs
	if opt.SyncInterval <= 0 {
		opt.SyncInterval = DefaultSyncInterval
	}
	if opt.WALQuietPeriod <= 0 {
		opt.WALQuietPeriod = DefaultWALQuietPeriod
	}
	if opt.ShutdownTimeout <= 0 {
		opt.ShutdownTimeout = DefaultShutdownTimeout
	}
	if opt.L0Retention <= 0 {
		opt.L0Retention = DefaultL0Retention
	}
	if opt.L0RetentionCheckInterval <= 0 {
		opt.L0RetentionCheckInterval = DefaultL0RetentionCheckInterval
	}
	if opt.SnapshotInterval <= 0 {
		opt.SnapshotInterval = DefaultSnapshotInterval
	}
	if opt.Retention <= 0 {
		opt.Retention = DefaultRetention
	}
	if len(opt.CompactionLevels) == 0 {
		opt.CompactionLevels = DefaultCompactionLevels
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	opt.Logger = opt.Logger.With("component", "dbrepl")
	return &Replicator{opt: opt, client: newReplicaClient(opt.Store, opt.Logger)}, nil
}

// Start opens the database with litestream and starts replicating in the
// background. The database file may not exist yet: litestream starts
// capturing it as soon as it appears. Call State first: Start does not
// protect a replica that is ahead of the local database.
func (r *Replicator) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lsStore != nil || r.closed {
		return errors.New("start replication: already started or closed")
	}

	// Learn the replica's position once, so Close can tell whether data was
	// left behind even if nothing new was uploaded in this run.
	base, err := maxTXID(ctx, r.client, 0)
	if err != nil {
		return fmt.Errorf("start replication: read replica position: %w", err)
	}
	r.baseTXID = base
	if r.continuityBase, r.legacy, err = continuityBase(r.opt.DBPath); err != nil {
		return fmt.Errorf("start replication: %w", err)
	}
	if _, err := os.Stat(metaDir(r.opt.DBPath)); err == nil {
		if err := writeContinuityMarker(r.opt.DBPath, r.continuityBase, true); err != nil {
			return fmt.Errorf("start replication: %w", err)
		}
	}
	r.markedTXID = r.continuityBase

	// One loop (run) captures the WAL and uploads in the same tick, instead
	// of litestream's two independent 1 s loops, whose phases add up to two
	// intervals of lag under steady writes; it also sees every error.
	db := litestream.NewDB(r.opt.DBPath)
	db.MonitorInterval = 0
	// The engine's time-based checkpoint would run inside the capture, before
	// the upload; checkpointIfDue runs it after the upload instead.
	db.CheckpointInterval = 0
	r.lastCheckpoint = time.Now()
	replica := litestream.NewReplicaWithClient(db, r.client)
	replica.SyncInterval = r.opt.SyncInterval
	replica.MonitorEnabled = false
	db.Replica = replica

	levels := litestream.CompactionLevels{{Level: 0}}
	for i, d := range r.opt.CompactionLevels {
		levels = append(levels, &litestream.CompactionLevel{Level: i + 1, Interval: d})
	}
	s := litestream.NewStore([]*litestream.DB{db}, levels)
	s.Logger = r.opt.Logger
	db.SetLogger(r.opt.Logger.With(litestream.LogKeyDB, filepath.Base(r.opt.DBPath)))
	s.SnapshotInterval = r.opt.SnapshotInterval
	s.SnapshotRetention = r.opt.Retention
	s.SetL0Retention(r.opt.L0Retention)
	s.L0RetentionCheckInterval = r.opt.L0RetentionCheckInterval
	s.SetShutdownSyncTimeout(r.opt.ShutdownTimeout)
	// Open and initialise the database before the store starts its compaction
	// and snapshot monitors: litestream's DB.init writes fields (the file
	// handle, the page size) that those monitors read without a lock, so an
	// init racing a monitor is a data race (seen under -race). Store.Open then
	// finds the database open already. A database that does not exist yet is
	// initialised by the first sync after it appears, as before.
	if err := db.Open(); err != nil {
		return fmt.Errorf("start replication of %s: %w", r.opt.DBPath, err)
	}
	// The first capture proves that the replica continues where it stopped,
	// and makes it whole if not, before start-up reports success. An upload
	// that fails now is retried by the sync loop, whose first tick is at once.
	r.db = db
	if repaired, err := r.capture(ctx); err != nil {
		if ctx.Err() == nil { // a stop during start-up is no failed capture
			r.opt.Logger.Warn("first capture before start failed; the sync loop retries", "db", r.opt.DBPath, "error", err)
		}
	} else if repaired {
		if err := db.Replica.Sync(ctx); err != nil {
			r.opt.Logger.Warn("upload of the full copy failed; the sync loop retries", "db", r.opt.DBPath, "error", err)
		}
	}
	if err := s.Open(ctx); err != nil {
		return fmt.Errorf("start replication of %s: %w", r.opt.DBPath, err)
	}
	r.lsStore, r.startedAt = s, time.Now()
	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() { defer close(r.done); r.run(runCtx) }()
	r.opt.Logger.Info("replication started", "db", r.opt.DBPath, "store", r.opt.Store.String(),
		"sync_interval", r.opt.SyncInterval, "replica_txid", uint64(base))
	return nil
}

// Close captures the last WAL frames, uploads them (retrying for at most
// ShutdownTimeout) and stops replication. It returns an *UnsyncedError when
// transactions remain only on the local disk.
func (r *Replicator) Close(ctx context.Context) error {
	// r.mu is not held while flushing, so Status keeps answering.
	r.mu.Lock()
	if r.closed || r.lsStore == nil {
		r.closed = true
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()

	r.cancel()
	<-r.done
	// Leave litestream room to report its own timeout before ours cuts it off.
	ctx, cancel := context.WithTimeout(ctx, r.opt.ShutdownTimeout+5*time.Second)
	defer cancel()
	// Capture and upload what was committed since the last tick (or since Start,
	// when Close comes before the first tick finished): litestream's own
	// shutdown sync uploads captured LTX files only, not the WAL behind them.
	if err := r.sync(ctx); err != nil {
		r.opt.Logger.Warn("final sync before close failed", "db", r.opt.DBPath, "error", err)
	}
	closeErr := r.lsStore.Close(ctx)
	r.recordSync(closeErr)

	local, err := localTXID(r.db)
	if err != nil {
		return errors.Join(closeErr, fmt.Errorf("close replication: read local position: %w", err))
	}
	synced := r.syncedTXID()
	if local > synced {
		return &UnsyncedError{LocalTXID: uint64(local), ReplicatedTXID: uint64(synced), Err: closeErr}
	}
	if closeErr != nil {
		return fmt.Errorf("close replication: %w", closeErr)
	}
	r.opt.Logger.Info("replication stopped", "db", r.opt.DBPath, "txid", uint64(synced))
	return nil
}

// run syncs until ctx ends, backing off on errors. A change of the WAL
// followed by WALQuietPeriod without writes syncs at once, unless the last
// sync that uploaded something began less than SyncInterval ago: then it
// waits for that. The tick fires SyncInterval after the last sync began (not
// on a fixed phase, which could land just after a woken upload), for a
// sustained burst that never goes quiet and for a folder that cannot be
// watched. So a burst costs at most one upload per interval; an idle tick
// makes no request.
func (r *Replicator) run(ctx context.Context) {
	tick := time.NewTimer(r.opt.SyncInterval)
	defer tick.Stop()
	wake := r.watchWAL(ctx)
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	defer quiet.Stop()
	var (
		backoff    time.Duration
		lastLog    time.Time
		lastUpload time.Time // start of the last sync that uploaded a level-0 file
		dirty      bool      // the WAL changed since the last sync began
	)
	// The first sync runs at once: after a crash, transactions the previous
	// process committed but did not upload are waiting in the WAL.
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			case <-wake:
				dirty = true
				quiet.Reset(r.opt.WALQuietPeriod)
				continue
			case <-quiet.C:
				if !dirty {
					continue
				}
				if wait := r.opt.SyncInterval - time.Since(lastUpload); wait > 0 {
					quiet.Reset(wait)
					continue
				}
			}
		}
		if backoff > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
		began, uploaded := time.Now(), r.client.maxL0TXID.Load()
		dirty = false
		tick.Reset(r.opt.SyncInterval)
		err := r.sync(ctx)
		if r.client.maxL0TXID.Load() != uploaded {
			lastUpload = began
		}
		if ctx.Err() != nil {
			return
		}
		r.recordSync(err)
		if err == nil {
			if backoff > 0 {
				r.opt.Logger.Info("replication recovered", "db", r.opt.DBPath)
			}
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, r.opt.SyncInterval), maxSyncBackoff)
		if time.Since(lastLog) >= 30*time.Second {
			r.opt.Logger.Error("replication sync failed", "db", r.opt.DBPath, "error", err, "retry_in", backoff)
			lastLog = time.Now()
		}
	}
}

// Sync captures and uploads every transaction committed so far. It is a
// barrier for callers (start-up ordering, before a snapshot); replication
// does not need it.
func (r *Replicator) Sync(ctx context.Context) error {
	r.mu.Lock()
	running := r.lsStore != nil && !r.closed
	r.mu.Unlock()
	if !running {
		return errors.New("sync: replication is not running")
	}
	err := r.sync(ctx)
	r.recordSync(err)
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	return nil
}

// sync captures new WAL frames into LTX files and uploads what the store
// lacks. An idle tick makes no request: the replica's position is cached.
func (r *Replicator) sync(ctx context.Context) error {
	r.syncStart.Store(time.Now().UnixNano())
	defer r.syncStart.Store(0)
	uploaded, err := r.captureAndUpload(ctx)
	if err != nil || !uploaded || !r.checkpointIfDue(ctx) {
		return err
	}
	// The checkpoint's own WAL bookkeeping goes up in this sync: left to a
	// sync of its own, that upload would start a sync interval that the next
	// commit has to wait out.
	_, err = r.captureAndUpload(ctx)
	return err
}

// captureAndUpload captures the WAL and uploads what the replica lacks;
// uploaded says whether there was anything.
func (r *Replicator) captureAndUpload(ctx context.Context) (uploaded bool, err error) {
	if _, err := r.capture(ctx); err != nil {
		return false, err
	}
	pos, err := r.db.Pos()
	if err != nil {
		return false, fmt.Errorf("local position: %w", err)
	}
	// Nothing captured yet (the database does not exist yet): calling the
	// replica now would list the store on every tick.
	if pos.TXID == 0 {
		return false, nil
	}
	if rp := r.db.Replica.Pos(); !rp.IsZero() && rp.TXID >= pos.TXID {
		return false, nil
	}
	if err := r.db.Replica.Sync(ctx); err != nil {
		return false, fmt.Errorf("upload: %w", err)
	}
	return true, nil
}

// checkpointInterval is how often an upload is followed by a PASSIVE
// checkpoint (the engine's default time-based interval).
const checkpointInterval = litestream.DefaultCheckpointInterval

// checkpointIfDue runs the engine's time-based PASSIVE checkpoint once an
// upload is done. Run by the engine inside the capture, it came between a
// commit's capture and its upload, and its copy of the WAL into the database
// (with a sync of the database file) held that commit back from being
// durable: 0.57-0.61 s once a minute in bench/dbrepl, against 0.07 s
// otherwise. The caller uploads the checkpoint's own WAL bookkeeping; the
// size-based checkpoints stay in the engine's capture. The checkpoint writes
// level-0 files of its own, so the continuity marker moves past them at once:
// a kill before the next capture must not cost the next start a full copy.
// It reports whether a checkpoint ran.
func (r *Replicator) checkpointIfDue(ctx context.Context) bool {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	if !r.proven || time.Since(r.lastCheckpoint) < checkpointInterval {
		return false
	}
	r.lastCheckpoint = time.Now()
	if err := r.db.Checkpoint(ctx, litestream.CheckpointModePassive); err != nil && ctx.Err() == nil {
		// A PASSIVE checkpoint gives way to busy readers and writers; the
		// next one, or the engine's size-based one, catches up.
		r.opt.Logger.Debug("checkpoint after upload skipped", "db", r.opt.DBPath, "error", err)
	}
	if err := r.markLocked(); err != nil {
		r.opt.Logger.Warn("continuity marker not moved after the checkpoint", "db", r.opt.DBPath, "error", err)
	}
	return true
}

// capture reads new WAL frames into LTX files. Until the files written after
// start are proven continuous it checks them (continuity.go), rewriting the
// newest as a full copy of the database when they cannot be proven; repaired
// reports that. Then it records the position reached for the next start.
func (r *Replicator) capture(ctx context.Context) (repaired bool, err error) {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	if err := r.db.Sync(ctx); err != nil {
		return false, fmt.Errorf("capture wal: %w", err)
	}
	if !r.proven {
		proven, repaired, err := r.checkContinuity(ctx)
		if err != nil {
			return false, err
		}
		r.proven = proven
		return repaired, nil
	}
	return false, r.markLocked()
}

// markLocked records the local position this running, proven engine has
// reached: its files need no proof at the next start (a lost update only
// costs that start a full copy). The caller holds syncMu.
func (r *Replicator) markLocked() error {
	pos, err := r.db.Pos()
	if err != nil {
		return fmt.Errorf("local position: %w", err)
	}
	if pos.TXID > r.markedTXID {
		if err := writeContinuityMarker(r.opt.DBPath, pos.TXID, false); err != nil {
			return err
		}
		r.markedTXID = pos.TXID
	}
	return nil
}

// recordSync keeps the outcome of a sync for Status.
func (r *Replicator) recordSync(err error) {
	r.statMu.Lock()
	defer r.statMu.Unlock()
	if err != nil {
		r.lastErr, r.lastErrAt = err, time.Now()
		return
	}
	r.lastErr = nil
	r.lastSyncAt = time.Now()
}

// syncedTXID returns the highest transaction known to be in the store.
func (r *Replicator) syncedTXID() ltx.TXID {
	synced := max(r.baseTXID, ltx.TXID(r.client.maxL0TXID.Load()))
	if r.db != nil && r.db.Replica != nil {
		synced = max(synced, r.db.Replica.Pos().TXID)
	}
	return synced
}

// Status reports replication progress. It makes no request to the store.
func (r *Replicator) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	var st Status
	st.Running = r.lsStore != nil && !r.closed
	if r.db != nil {
		if local, err := localTXID(r.db); err == nil {
			st.LocalTXID = uint64(local)
		}
	}
	st.ReplicatedTXID = uint64(r.syncedTXID())
	r.client.mu.Lock()
	st.LastUploadAt = r.client.lastUploadAt
	r.client.mu.Unlock()
	r.statMu.Lock()
	st.LastSyncAt = r.lastSyncAt
	if r.lastErr != nil {
		st.LastError, st.LastErrorAt = r.lastErr.Error(), r.lastErrAt
	}
	r.statMu.Unlock()
	if stalled := r.stalledFor(); stalled > 0 {
		st.LastError = fmt.Sprintf("sync not finished after %s: the store is not answering", stalled.Round(time.Second))
		st.LastErrorAt = time.Now()
	}
	if st.LocalTXID > st.ReplicatedTXID {
		since := st.LastSyncAt
		if since.IsZero() {
			since = r.startedAt
		}
		st.Lag = time.Since(since)
	}
	return st
}

// stalledFor is how long the sync in progress has gone without an answer from
// the store or a byte of upload, once that exceeds max(10 s, 10 sync
// intervals); zero otherwise. A store that hangs instead of failing (a frozen
// server, a partition that drops packets) shows up in the status this way
// before any request times out, while a large upload that is moving does not.
func (r *Replicator) stalledFor() time.Duration {
	start := r.syncStart.Load()
	if start == 0 {
		return 0
	}
	last := max(start, r.client.progress.Load())
	idle := time.Since(time.Unix(0, last))
	if idle < stallTimeout(r.opt.SyncInterval) {
		return 0
	}
	return time.Since(time.Unix(0, start))
}

// stallTimeout is how long a sync may go without an answer from the store
// before Status reports the store as not answering: max(10 s, 10 intervals).
func stallTimeout(syncInterval time.Duration) time.Duration {
	return max(10*time.Second, 10*syncInterval)
}

// localTXID returns the last transaction litestream wrote to its local L0
// folder, which is what it uploads next.
func localTXID(db *litestream.DB) (ltx.TXID, error) {
	_, txid, err := db.MaxLTX()
	return txid, err
}

// maxTXID returns the highest TXID stored at one level, or zero.
func maxTXID(ctx context.Context, c *replicaClient, level int) (ltx.TXID, error) {
	itr, err := c.LTXFiles(ctx, level, 0, false)
	if err != nil {
		return 0, err
	}
	defer func() { _ = itr.Close() }()
	var txid ltx.TXID
	for itr.Next() {
		txid = max(txid, itr.Item().MaxTXID)
	}
	return txid, itr.Close()
}
