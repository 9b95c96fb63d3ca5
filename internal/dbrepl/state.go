package dbrepl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/vault"
)

// StartState says what start-up should do with the local database.
type StartState int

const (
	// StateFresh: no local database and an empty replica; wait for the
	// application to create the database, then replicate it.
	StateFresh StartState = iota
	// StateRestore: no local database but the replica has one; restore first.
	StateRestore
	// StateResume: the local database is at or ahead of the replica; replicate.
	StateResume
	// StateStale: the replica holds transactions the local database lacks
	// (another node wrote since, or the volume is an old copy); starting would
	// replace the replica's newer history with this older state, so refuse.
	StateStale
)

func (s StartState) String() string {
	switch s {
	case StateFresh:
		return "fresh"
	case StateRestore:
		return "restore"
	case StateResume:
		return "resume"
	case StateStale:
		return "stale"
	}
	return "unknown"
}

// StateInfo is the outcome of State with the positions it compared.
type StateInfo struct {
	State       StartState
	LocalExists bool
	LocalTXID   uint64 // from litestream's local state folder; 0 when absent
	ReplicaTXID uint64 // newest transaction in the store
	Restored    bool   // the local database was written by Restore from this replica
	Message     string // one line for humans, saying how to resolve StateStale
}

// restoreMarkerName is written by Restore inside litestream's state folder:
// a restored database has no litestream state yet, and without the marker it
// could not be told from a stale copy.
const restoreMarkerName = "vwstream-restore.json"

// restoreMarker records what a restore left behind.
type restoreMarker struct {
	TXID        uint64    `json:"txid"`         // transaction restored
	ReplicaTXID uint64    `json:"replica_txid"` // newest transaction in the replica then
	At          time.Time `json:"at"`
}

// State compares the local database with the replica for start-up safety.
//
// The local position is the newest level-0 LTX file in litestream's state
// folder (.<db>-litestream/ltx/0), the last transaction litestream captured
// from this file; the replica's is the newest TXID at any level. The rule:
//   - no local database: StateRestore if the replica has data, else StateFresh;
//   - local database, empty replica: StateResume;
//   - local position >= replica position: StateResume (unsynced local
//     transactions are uploaded next);
//   - restored by Restore and nothing written to the replica since: StateResume
//     (litestream then writes a new snapshot on top of the replica's history);
//   - otherwise StateStale: the caller refuses to start.
func State(ctx context.Context, dbPath string, store objstore.Store) (StateInfo, error) {
	var info StateInfo
	dbPath, err := filepath.Abs(dbPath)
	if err != nil {
		return info, fmt.Errorf("replication state: %w", err)
	}
	fi, err := os.Stat(dbPath)
	switch {
	case err == nil && fi.Size() > 0:
		info.LocalExists = true
	case err == nil, os.IsNotExist(err):
	default:
		return info, fmt.Errorf("replication state: %w", err)
	}

	replicaTXID, err := replicaMaxTXID(ctx, store)
	if err != nil {
		return info, fmt.Errorf("replication state: %w", err)
	}
	info.ReplicaTXID = uint64(replicaTXID)

	if !info.LocalExists {
		if replicaTXID == 0 {
			info.State, info.Message = StateFresh, "no local database and no replica: waiting for the database to be created"
		} else {
			info.State, info.Message = StateRestore, fmt.Sprintf("no local database: restore transaction %d from the replica", replicaTXID)
		}
		return info, nil
	}

	local, err := localStateTXID(dbPath)
	if err != nil {
		return info, fmt.Errorf("replication state: %w", err)
	}
	info.LocalTXID = uint64(local)
	marker, err := readRestoreMarker(dbPath)
	if err != nil {
		return info, fmt.Errorf("replication state: %w", err)
	}
	info.Restored = marker != nil && marker.ReplicaTXID >= info.ReplicaTXID

	switch {
	case replicaTXID == 0:
		info.State, info.Message = StateResume, "empty replica: replicating the local database"
	case local >= replicaTXID:
		info.State, info.Message = StateResume, fmt.Sprintf("local database at transaction %d, replica at %d: replicating", local, replicaTXID)
	case info.Restored:
		info.State, info.Message = StateResume, fmt.Sprintf("local database restored from the replica at transaction %d: replicating", marker.TXID)
	default:
		what := fmt.Sprintf("is at transaction %d", local)
		if local == 0 {
			what = "has no replication state"
		}
		info.State = StateStale
		info.Message = fmt.Sprintf("local database %s %s but the replica holds transaction %d: "+
			"it is older than the replica (another node wrote since, or the volume is an old copy); "+
			"move it away to restore the replica's state, or remove the replica's db/ folder to keep the local one",
			dbPath, what, replicaTXID)
	}
	return info, nil
}

// metaDir is litestream's state folder for a database.
func metaDir(dbPath string) string {
	dir, file := filepath.Split(dbPath)
	return filepath.Join(dir, "."+file+litestream.MetaDirSuffix)
}

// localStateTXID returns the newest level-0 TXID in litestream's state folder.
func localStateTXID(dbPath string) (ltx.TXID, error) {
	ents, err := os.ReadDir(filepath.Join(metaDir(dbPath), "ltx", "0"))
	if os.IsNotExist(err) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	var txid ltx.TXID
	for _, ent := range ents {
		if _, maxTXID, err := ltx.ParseFilename(ent.Name()); err == nil {
			txid = max(txid, maxTXID)
		}
	}
	return txid, nil
}

// replicaMaxTXID returns the newest TXID at any level, in one listing.
// ReplicaTXID is the newest transaction the replica in store holds, at any
// level; 0 for an empty replica.
func ReplicaTXID(ctx context.Context, store objstore.Store) (uint64, error) {
	txid, err := replicaMaxTXID(ctx, store)
	return uint64(txid), err
}

func replicaMaxTXID(ctx context.Context, store objstore.Store) (ltx.TXID, error) {
	h, err := readReplicaHead(ctx, store)
	return h.txid, err
}

// replicaHead is the replica's newest transaction and its newest level-0 file.
type replicaHead struct {
	txid         ltx.TXID // newest at any level
	l0Min, l0Max ltx.TXID // the newest level-0 file; zero when there is none
}

// readReplicaHead lists the replica once.
func readReplicaHead(ctx context.Context, store objstore.Store) (replicaHead, error) {
	h, _, err := listReplica(ctx, store)
	return h, err
}

// listReplica lists the replica once: its head and each level's LTX files in
// the store's (TXID) order, as replicaClient.LTXFiles would list them.
func listReplica(ctx context.Context, store objstore.Store) (replicaHead, map[int][]*ltx.FileInfo, error) {
	var h replicaHead
	levels := map[int][]*ltx.FileInfo{}
	for oi, err := range store.List(ctx, layout.DB) {
		if err != nil {
			return replicaHead{}, nil, fmt.Errorf("list replica: %w", err)
		}
		level, err := strconv.ParseUint(path.Base(path.Dir(oi.Key)), 16, 8)
		if err != nil || int(level) > litestream.SnapshotLevel || path.Dir(oi.Key)+"/" != levelPrefix(int(level)) {
			continue
		}
		minTXID, maxTXID, err := ltx.ParseFilename(path.Base(oi.Key))
		if err != nil {
			continue
		}
		h.txid = max(h.txid, maxTXID)
		if level == 0 && maxTXID > h.l0Max {
			h.l0Min, h.l0Max = minTXID, maxTXID
		}
		levels[int(level)] = append(levels[int(level)], &ltx.FileInfo{
			Level: int(level), MinTXID: minTXID, MaxTXID: maxTXID, Size: oi.Size, CreatedAt: oi.ModTime.UTC(),
		})
	}
	return h, levels, nil
}

// writeRestoreMarker records a restore in the database's litestream folder.
func writeRestoreMarker(dbPath string, m restoreMarker) error {
	dir := metaDir(dbPath)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("write restore marker: %w", err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("write restore marker: %w", err)
	}
	if err := vault.ReplaceFile(filepath.Join(dir, restoreMarkerName), b, 0o600); err != nil {
		return fmt.Errorf("write restore marker: %w", err)
	}
	return nil
}

// readRestoreMarker returns the restore marker, or nil when there is none.
func readRestoreMarker(dbPath string) (*restoreMarker, error) {
	b, err := os.ReadFile(filepath.Join(metaDir(dbPath), restoreMarkerName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read restore marker: %w", err)
	}
	var m restoreMarker
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read restore marker: %w", err)
	}
	return &m, nil
}
