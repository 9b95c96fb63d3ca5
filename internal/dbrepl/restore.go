package dbrepl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
	_ "modernc.org/sqlite" // litestream registers it too; one driver keeps SQLite's POSIX locks consistent

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/vault"
)

// ErrNoReplica reports a store that holds no database replica.
var ErrNoReplica = errors.New("no database replica in the store")

// ErrOutputExists reports a restore target that exists while Force is off.
var ErrOutputExists = errors.New("database already exists")

// RestoreOptions describe one restore.
type RestoreOptions struct {
	Store      objstore.Store
	OutputPath string    // the database file to create
	Timestamp  time.Time // restore the state as of this instant; zero restores the latest
	// TXID restores the state right after this transaction; 0 restores the
	// latest. At most one of Timestamp and TXID is set.
	TXID   uint64
	Force  bool // replace an existing database
	Logger *slog.Logger
}

// Result describes a finished restore.
type Result struct {
	Path      string    // the restored database
	TXID      uint64    // last transaction restored
	Timestamp time.Time // when litestream captured that transaction
	Files     int       // LTX files applied
	// Seeded: the replica's newest transaction was restored and the engine's
	// state left for it, so replication continues with the next transaction
	// instead of a full copy (seed.go).
	Seeded bool
}

// RangeError reports a point-in-time target before the oldest state the replica
// can rebuild. A target after its newest transaction restores the latest state.
type RangeError struct {
	At, First, Last time.Time
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("no replica data at %s: restorable range is %s to %s",
		e.At.UTC().Format(time.RFC3339Nano), e.First.UTC().Format(time.RFC3339Nano), e.Last.UTC().Format(time.RFC3339Nano))
}

// Restore rebuilds the database from the replica into a temporary file next to
// OutputPath, checks it with PRAGMA integrity_check and renames it into place.
// Whatever fails before the rename leaves an existing database untouched.
// The output's old -wal and -shm are removed with the swap (a stale WAL would
// be replayed over the restored pages) and so is its litestream state folder.
func Restore(ctx context.Context, opt RestoreOptions) (res Result, err error) {
	if opt.Store == nil || opt.OutputPath == "" {
		return res, errors.New("restore: store and output path required")
	}
	logger := opt.Logger
	if logger == nil {
		logger = slog.Default()
	}
	out, err := filepath.Abs(opt.OutputPath)
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	res.Path = out
	if _, err := os.Stat(out); err == nil && !opt.Force {
		return res, fmt.Errorf("restore to %s: %w (use --force to replace it)", out, ErrOutputExists)
	} else if err != nil && !os.IsNotExist(err) {
		return res, fmt.Errorf("restore: %w", err)
	}

	client := newReplicaClient(opt.Store, logger)
	// One listing gives the replica's head and the plan: a request per level
	// would cost a round trip each before the first byte is fetched.
	head, levels, err := listReplica(ctx, opt.Store)
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	client.useListing(levels)
	replicaTXID := head.txid
	var plan []*ltx.FileInfo
	if opt.TXID != 0 {
		if !opt.Timestamp.IsZero() {
			return res, errors.New("restore: a transaction and an instant were both given; give one")
		}
		plan, err = txidPlan(ctx, client, ltx.TXID(opt.TXID), logger)
	} else {
		plan, err = restorePlan(ctx, client, opt.Timestamp, logger)
	}
	if err != nil {
		return res, err
	}
	last := plan[len(plan)-1]
	res.TXID, res.Files = uint64(last.MaxTXID), len(plan)
	res.Timestamp = last.CreatedAt

	if err := os.MkdirAll(filepath.Dir(out), 0o750); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+".restore-")
	if err != nil {
		return res, fmt.Errorf("restore: create temp folder: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmpDir) }()
	tmp := filepath.Join(tmpDir, filepath.Base(out))

	// The replica's newest transaction restored: its pages seed the engine's
	// state (seed.go), read while applying the plan or fetched beside it.
	var seed *seedSource
	if last.MaxTXID == head.txid && head.l0Min == head.txid && head.l0Max == head.txid {
		seed = startSeed(ctx, client, last, filepath.Join(tmpDir, "seed.ltx"))
		defer seed.stop() // before the temp folder goes
	}

	newest, err := applyPlanRetrying(ctx, client, plan, tmp, seed.kept(), logger)
	if err != nil {
		// Litestream's message ("file checksum mismatch", "unexpected EOF")
		// does not say which object is bad; name it when one is.
		if key, derr := damagedFile(ctx, client, plan); key != "" {
			return res, fmt.Errorf("restore txid %d: replica object %s is damaged: %w", res.TXID, key, derr)
		}
		return res, fmt.Errorf("restore txid %d: %w", res.TXID, err)
	}
	// The transaction's time is in the header of the newest file applied.
	if newest.Timestamp != 0 {
		res.Timestamp = time.UnixMilli(newest.Timestamp).UTC()
	}
	if err := vault.CheckIntegrity(ctx, tmp); err != nil {
		return res, fmt.Errorf("restore txid %d: %w", res.TXID, err)
	}
	if err := swapInto(tmp, out); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	if err := writeRestoreMarker(out, restoreMarker{TXID: res.TXID, ReplicaTXID: uint64(replicaTXID), At: time.Now().UTC()}); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	if seed != nil {
		if err := seed.apply(out); err != nil {
			logger.Warn("restored database left without replication state: its first start uploads a full copy",
				"path", out, "txid", res.TXID, "error", err)
		} else {
			res.Seeded = true
		}
	}
	logger.Info("database restored", "path", out, "txid", res.TXID, "timestamp", res.Timestamp, "files", res.Files)
	return res, nil
}

// restorePlan picks the LTX files to apply, or explains why there are none.
func restorePlan(ctx context.Context, client *replicaClient, at time.Time, logger *slog.Logger) ([]*ltx.FileInfo, error) {
	if at.IsZero() {
		plan, err := litestream.CalcRestorePlan(ctx, client, 0, time.Time{}, logger)
		if errors.Is(err, litestream.ErrTxNotAvailable) {
			if empty, eerr := replicaEmpty(ctx, client); eerr == nil && empty {
				return nil, ErrNoReplica
			}
		}
		if err != nil {
			return nil, fmt.Errorf("restore plan: %w", err)
		}
		return plan, nil
	}

	first, last, err := timeRange(ctx, client)
	if err != nil {
		return nil, err
	}
	if at.Before(first) {
		return nil, &RangeError{At: at, First: first, Last: last}
	}
	if !at.Before(last) {
		// Nothing was captured after the newest transaction: the state at any
		// later instant is the latest one (the result names its time).
		return restorePlan(ctx, client, time.Time{}, logger)
	}
	// Litestream takes files created strictly before the target; header times
	// are whole milliseconds, so one more makes --at inclusive.
	plan, err := litestream.CalcRestorePlan(ctx, client, 0, at.Add(time.Millisecond), logger)
	if errors.Is(err, litestream.ErrTxNotAvailable) {
		return nil, &RangeError{At: at, First: first, Last: last}
	} else if err != nil {
		return nil, fmt.Errorf("restore plan at %s: %w", at.UTC().Format(time.RFC3339), err)
	}
	return plan, nil
}

// txidPlan picks the LTX files that rebuild the state right after txid. The
// replica must hold that exact boundary: a compacted file that spans it
// cannot stop halfway, and the plan would end past it.
func txidPlan(ctx context.Context, client *replicaClient, txid ltx.TXID, logger *slog.Logger) ([]*ltx.FileInfo, error) {
	plan, err := litestream.CalcRestorePlan(ctx, client, txid, time.Time{}, logger)
	if errors.Is(err, litestream.ErrTxNotAvailable) {
		if empty, eerr := replicaEmpty(ctx, client); eerr == nil && empty {
			return nil, ErrNoReplica
		}
	}
	if err != nil {
		return nil, fmt.Errorf("restore plan for transaction %d: %w", txid, err)
	}
	if got := plan[len(plan)-1].MaxTXID; got != txid {
		return nil, fmt.Errorf("restore plan for transaction %d: the replica holds no boundary there (nearest file ends at %d)", txid, got)
	}
	return plan, nil
}

// damagedFile reads every file of the plan through and checks its LTX
// checksums; it returns the key of the first that fails, with the reason.
func damagedFile(ctx context.Context, client *replicaClient, plan []*ltx.FileInfo) (string, error) {
	for _, info := range plan {
		key := ltxKey(info.Level, info.MinTXID, info.MaxTXID)
		rc, err := client.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrNotExist) {
				return "", nil
			}
			return key, err
		}
		err = ltx.NewDecoder(rc).Verify()
		_ = rc.Close()
		if err != nil && ctx.Err() == nil {
			return key, err
		}
	}
	return "", nil
}

// Range returns the first and last instants the replica can restore to, by the
// transaction times in the LTX headers. It returns ErrNoReplica when empty.
func Range(ctx context.Context, store objstore.Store) (first, last time.Time, err error) {
	return timeRange(ctx, newReplicaClient(store, slog.Default()))
}

// timeRange scans every level. The first restorable instant is the earliest
// file that starts at TXID 1 (a snapshot or the first L0/L1 file): a restore
// needs one as its base. The last is the newest transaction time.
func timeRange(ctx context.Context, client *replicaClient) (first, last time.Time, err error) {
	for level := 0; level <= litestream.SnapshotLevel; level++ {
		itr, err := client.LTXFiles(ctx, level, 0, true)
		if err != nil {
			return first, last, fmt.Errorf("replica range: %w", err)
		}
		for itr.Next() {
			info := itr.Item()
			if info.MinTXID == 1 && (first.IsZero() || info.CreatedAt.Before(first)) {
				first = info.CreatedAt
			}
			if info.CreatedAt.After(last) {
				last = info.CreatedAt
			}
		}
		if err := itr.Close(); err != nil {
			return first, last, fmt.Errorf("replica range: %w", err)
		}
	}
	if last.IsZero() {
		return first, last, ErrNoReplica
	}
	if first.IsZero() {
		return first, last, fmt.Errorf("replica range: no snapshot or first transaction: replica is incomplete")
	}
	return first, last, nil
}

// replicaEmpty reports whether the store holds no LTX file at all.
func replicaEmpty(ctx context.Context, client *replicaClient) (bool, error) {
	for oi, err := range client.store.List(ctx, layout.DB) {
		if err != nil {
			return false, err
		}
		if strings.HasSuffix(oi.Key, ".ltx") {
			return false, nil
		}
	}
	return true, nil
}

// swapInto renames the restored file over out. The old database's -wal and
// -shm are moved aside first and put back if the rename fails, so a failed
// swap loses nothing; its litestream state folder describes the old file and
// is removed after the swap.
func swapInto(tmp, out string) error {
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		_ = os.Remove(tmp + suffix)
	}
	type moved struct{ from, to string }
	var aside []moved
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		from := out + suffix
		to := tmp + ".old" + suffix
		if err := os.Rename(from, to); err == nil {
			aside = append(aside, moved{from, to})
		} else if !os.IsNotExist(err) {
			for _, m := range aside {
				_ = os.Rename(m.to, m.from)
			}
			return fmt.Errorf("move aside %s: %w", from, err)
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		for _, m := range aside {
			_ = os.Rename(m.to, m.from)
		}
		return fmt.Errorf("rename restored database: %w", err)
	}
	if err := vault.SyncDir(filepath.Dir(out)); err != nil {
		return err
	}
	if err := os.RemoveAll(metaDir(out)); err != nil {
		return fmt.Errorf("remove old litestream state: %w", err)
	}
	return nil
}
