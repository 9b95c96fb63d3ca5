// Package drill proves that the backups restore: it restores the latest
// replica state (database and files) and the latest snapshot into temporary
// folders on this host, checks the database's integrity, the attachment
// references and that the restored transaction is the one the replica
// announced, measures how long it took (the restore time an outage would
// cost) and removes the folders. `vwstream drill` runs one; DRILL_CRON runs
// them in the node.
package drill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/notify"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/restore"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/vault"
)

// ErrNoSpace reports a temp folder too small for the restore: the drill did
// not start.
var ErrNoSpace = errors.New("not enough free space for a restore drill")

// SpaceMargin is how much more free space than the estimated restore size a
// drill wants before it starts.
const SpaceMargin = 1.25

// Options describe one drill. A nil Data skips the replica part, a nil
// Snapshots the snapshot part; at least one must be set.
type Options struct {
	Data   objstore.Store    // the data view: db/ and files/ (sealed)
	DBName string            // the database's file name (db.sqlite3)
	Files  restore.FilesFunc // restores files/ into a folder; nil skips the files
	// Attachments is where the attachments are in a restored data folder dir;
	// nil skips the reference check of the replica (attachments not synced).
	Attachments func(dir string) string
	// LiveAttachments is the live data folder's attachments folder, used only
	// while LocalDB exists on this host. An attachment row the restore has no
	// file for, and whose file the live folder lacks too, is an upload still
	// running or never finished (Vaultwarden inserts the row first): the
	// backup holds the vault as it is, and the drill notes it instead of
	// failing.
	LiveAttachments string
	// Flush has file sync upload what the live folder holds and the bucket
	// does not, and waits for it; nil when no file sync runs here. When the
	// restore lacks a file the live folder holds, the drill flushes once and
	// restores the files again before it fails.
	Flush func(ctx context.Context) error

	Snapshots objstore.Store    // the plain store holding snapshots/
	Namer     *snapshot.Namer   // BACKUP_FILENAME, to find the newest
	Keys      seal.SnapshotKeys // to decrypt it
	// Note says what the configuration leaves out of the drill, and why (the
	// result's note).
	Note string

	// TempDir is where the restores go; os.TempDir when empty (snapshot
	// drills unpack there too).
	TempDir string
	// LocalDB is the live database, whose size estimates the restore's; when
	// it is absent the replica's largest object stands in.
	LocalDB   string
	FreeSpace func(path string) (int64, error) // nil: no space check
	Notifier  notify.Notifier                  // told the result; nil for none
	Pinger    *notify.Pinger                   // HEALTHCHECK_PING_URL; nil for none
	Logger    *slog.Logger
}

// Result is what a drill found. Duration is the whole drill, the measured
// restore time.
type Result struct {
	OK       bool            `json:"ok"`
	Started  time.Time       `json:"started"`
	Duration time.Duration   `json:"duration_ns"`
	Seconds  float64         `json:"duration_seconds"`
	Replica  *ReplicaResult  `json:"replica,omitempty"`
	Snapshot *SnapshotResult `json:"snapshot,omitempty"`
	Note     string          `json:"note,omitempty"` // what was not drilled, and why
	Error    string          `json:"error,omitempty"`
}

// ReplicaResult is the replica part of a drill.
type ReplicaResult struct {
	TXID               uint64 `json:"txid"`           // restored
	AnnouncedTXID      uint64 `json:"announced_txid"` // the replica's newest when the drill began
	Files              int    `json:"files"`
	MissingAttachments int    `json:"missing_attachments"`
	// UnfinishedAttachments are rows whose file the live data folder lacks
	// too: an upload in progress or abandoned, or a file deleted since.
	UnfinishedAttachments int           `json:"unfinished_attachments"`
	Duration              time.Duration `json:"duration_ns"`
}

// SnapshotResult is the snapshot part of a drill.
type SnapshotResult struct {
	Name               string        `json:"name"`
	Files              int           `json:"files"`
	Bytes              int64         `json:"bytes"`
	Integrity          string        `json:"integrity"`
	MissingAttachments int           `json:"missing_attachments"`
	Degraded           bool          `json:"degraded"` // as recorded when it was taken
	Duration           time.Duration `json:"duration_ns"`
}

// Run performs one drill. Its error is why the drill failed (a damaged
// object, a failed check) or could not start (ErrNoSpace); the Result says
// what was checked until then, and always how long it took.
func Run(ctx context.Context, o Options) (*Result, error) {
	res := &Result{Started: time.Now().UTC()}
	err := o.Pinger.Around(ctx, "drill", func() error { return run(ctx, o, res) })
	res.Duration = time.Since(res.Started)
	res.Seconds = res.Duration.Seconds()
	res.OK = err == nil
	if err != nil {
		res.Error = err.Error()
	}
	if o.Notifier != nil {
		ev := notify.Event{Kind: "drill", OK: res.OK, Duration: res.Duration, Error: res.Error, Time: time.Now()}
		if res.Snapshot != nil {
			ev.Name, ev.Size = res.Snapshot.Name, res.Snapshot.Bytes
		}
		nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if nerr := o.Notifier.Notify(nctx, ev); nerr != nil && o.Logger != nil {
			o.Logger.Warn("drill notification not sent", "error", nerr)
		}
		cancel()
	}
	return res, err
}

func run(ctx context.Context, o Options, res *Result) error {
	if o.Data == nil && o.Snapshots == nil {
		return errors.New("drill: nothing to restore")
	}

	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	res.Note = o.Note
	var newest *snapshot.Info
	if o.Snapshots != nil {
		infos, err := snapshot.List(ctx, o.Snapshots, o.Namer)
		if err != nil {
			return fmt.Errorf("drill: %w", err)
		}
		switch {
		case len(infos) > 0:
			newest = &infos[0]
		case o.Data == nil:
			return errors.New("drill: no snapshot to restore")
		default:
			// A new deployment's first drill may come before its first
			// snapshot: the replica is still drilled, and BACKUP_MAX_AGE
			// is what watches for snapshots that never come.
			res.Note = "no snapshot yet: only the replica was drilled"
			o.Logger.Warn("drill: " + res.Note)
		}
	}
	if err := checkSpace(ctx, o, newest); err != nil {
		return err
	}
	if o.Data != nil {
		r, err := drillReplica(ctx, o)
		res.Replica = r
		if err != nil {
			return err
		}
	}
	if newest != nil {
		s, err := drillSnapshot(ctx, o, newest.Name)
		res.Snapshot = s
		if err != nil {
			return err
		}
	}
	return nil
}

// drillReplica restores the replica into a fresh temporary data folder,
// checks it and removes it.
func drillReplica(ctx context.Context, o Options) (*ReplicaResult, error) {
	start := time.Now()
	out := &ReplicaResult{}
	// The replica's newest position, read as a start-up would (no local
	// database in an empty folder).
	before, err := dbrepl.State(ctx, filepath.Join(o.TempDir, ".vwstream-drill-none", "db"), o.Data)
	if err != nil {
		return out, fmt.Errorf("drill: %w", err)
	}
	out.AnnouncedTXID = before.ReplicaTXID
	if out.AnnouncedTXID == 0 {
		return out, errors.New("drill: the replica holds no database")
	}
	dir, remove, err := o.tempFolder(".vwstream-drill-replica-*")
	if err != nil {
		return out, err
	}
	defer remove()
	r, err := restore.Replica(ctx, restore.Options{Store: o.Data, Dir: dir, DBName: o.DBName, Files: o.Files, Logger: o.Logger})
	out.TXID, out.Files = r.TXID, r.Files
	if err != nil {
		return out, fmt.Errorf("drill: replica: %w", err)
	}
	// restore.Replica checked the database's integrity before the swap; the
	// position must be the announced one, or a later one the primary wrote
	// while the drill ran.
	if out.TXID < out.AnnouncedTXID {
		return out, fmt.Errorf("drill: replica announced transaction %d but the restore reached only %d", out.AnnouncedTXID, out.TXID)
	}
	if out.TXID > out.AnnouncedTXID {
		after, err := dbrepl.State(ctx, filepath.Join(dir, ".none"), o.Data)
		if err != nil {
			return out, fmt.Errorf("drill: %w", err)
		}
		if out.TXID > after.ReplicaTXID {
			return out, fmt.Errorf("drill: restored transaction %d, beyond the replica's newest %d", out.TXID, after.ReplicaTXID)
		}
	}
	if o.Attachments != nil {
		if err := checkReplicaAttachments(ctx, o, dir, out); err != nil {
			return out, err
		}
	}
	out.Duration = time.Since(start)
	o.Logger.Info("drill: replica restored and checked", "txid", out.TXID, "files", out.Files, "duration", out.Duration)
	return out, nil
}

// checkReplicaAttachments checks that every attachment row of the restored
// database in dir has its file. A row whose file the live data folder lacks
// too is counted as unfinished, not failed: the replica holds the vault as it
// is. A row whose file the live folder holds in full is a file the replica
// lacks: with Flush the drill lets file sync catch up, restores the files
// again and checks those rows once more before it fails.
func checkReplicaAttachments(ctx context.Context, o Options, dir string, out *ReplicaResult) error {
	missing, err := vault.MissingAttachments(filepath.Join(dir, o.DBName), o.Attachments(dir))
	if err != nil {
		return fmt.Errorf("drill: replica: %w", err)
	}
	lacking, unfinished := splitByLive(missing, o.liveAttachments())
	if len(lacking) > 0 && o.Flush != nil && o.Files != nil {
		o.Logger.Info("drill: the replica lacks attachment files the data folder holds; waiting for file sync and restoring the files again",
			"files", len(lacking))
		if lacking, err = recheckAfterFlush(ctx, o, lacking); err != nil {
			return err
		}
	}
	out.MissingAttachments, out.UnfinishedAttachments = len(lacking), len(unfinished)
	if len(unfinished) > 0 {
		o.Logger.Warn("drill: attachment rows without their file, in the data folder too (an upload in progress or never finished)",
			"rows", len(unfinished), "first", unfinished[0].CipherUUID+"/"+unfinished[0].ID)
	}
	if len(lacking) > 0 {
		first, _ := filepath.Rel(dir, lacking[0].Path) // the folder is gone when the error is read
		return fmt.Errorf("drill: replica: %d attachment file(s) of the data folder are not in the replica (first: %s)", len(lacking), first)
	}
	return nil
}

// liveAttachments is the live attachments folder when the live database is on
// this host, or "" when the drill runs elsewhere and cannot tell.
func (o Options) liveAttachments() string {
	if o.LiveAttachments == "" || o.LocalDB == "" {
		return ""
	}
	if _, err := os.Stat(o.LocalDB); err != nil {
		return ""
	}
	return o.LiveAttachments
}

// splitByLive splits rows without their restored file into those whose file
// the live folder holds at the row's size (lacking from the replica) and the
// rest (unfinished in the vault itself). With no live folder every row is
// lacking.
func splitByLive(missing []vault.MissingAttachment, live string) (lacking, unfinished []vault.MissingAttachment) {
	for _, m := range missing {
		if live == "" || hasFile(filepath.Join(live, m.CipherUUID, m.ID), m.WantSize) {
			lacking = append(lacking, m)
		} else {
			unfinished = append(unfinished, m)
		}
	}
	return lacking, unfinished
}

// recheckAfterFlush flushes file sync, restores the files into a fresh folder
// and returns the rows of lacking whose file is still not there.
func recheckAfterFlush(ctx context.Context, o Options, lacking []vault.MissingAttachment) ([]vault.MissingAttachment, error) {
	if err := o.Flush(ctx); err != nil {
		return nil, fmt.Errorf("drill: replica: the replica lacks %d attachment file(s) and file sync did not catch up: %w", len(lacking), err)
	}
	again, remove, err := o.tempFolder(".vwstream-drill-files-*")
	if err != nil {
		return nil, err
	}
	defer remove()
	if _, err := o.Files(ctx, again); err != nil {
		return nil, fmt.Errorf("drill: replica: files: %w", err)
	}
	var still []vault.MissingAttachment
	for _, m := range lacking {
		if !hasFile(filepath.Join(o.Attachments(again), m.CipherUUID, m.ID), m.WantSize) {
			still = append(still, m)
		}
	}
	if len(still) < len(lacking) {
		o.Logger.Warn("drill: file sync uploaded attachment files the replica lacked", "files", len(lacking)-len(still))
	}
	return still, nil
}

// tempFolder makes a folder in TempDir; remove deletes it, logging a failure.
func (o Options) tempFolder(pattern string) (dir string, remove func(), err error) {
	dir, err = os.MkdirTemp(o.TempDir, pattern)
	if err != nil {
		return "", nil, fmt.Errorf("drill: %w", err)
	}
	return dir, func() {
		if err := os.RemoveAll(dir); err != nil {
			o.Logger.Warn("drill folder not removed", "dir", dir, "error", err)
		}
	}, nil
}

func hasFile(path string, size int64) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Size() == size
}

// drillSnapshot unpacks the snapshot into a temporary folder and checks it
// (snapshot.Restore with DryRun removes the folder).
func drillSnapshot(ctx context.Context, o Options, name string) (*SnapshotResult, error) {
	start := time.Now()
	out := &SnapshotResult{Name: name}
	r, err := snapshot.Restore(ctx, snapshot.RestoreOptions{Store: o.Snapshots, Namer: o.Namer, Name: name,
		DryRun: true, Keys: o.Keys, Logger: o.Logger})
	if err != nil {
		return out, fmt.Errorf("drill: snapshot: %w", err)
	}
	out.Files, out.Bytes, out.Integrity, out.MissingAttachments = r.Files, r.Bytes, r.Integrity, r.MissingAttachments
	out.Degraded = r.Degraded
	out.Duration = time.Since(start)
	// A snapshot taken while an upload was unfinished records the rows it
	// had no file for, and was reported degraded then; it restores as
	// recorded. A row without its file beyond those is a file the archive lost.
	if r.MissingAttachments > r.MissingWhenTaken {
		return out, fmt.Errorf("drill: snapshot %s: %d attachment row(s) without their file, %d when it was taken", name, r.MissingAttachments, r.MissingWhenTaken)
	}
	if r.Degraded {
		o.Logger.Warn("drill: the snapshot was degraded when taken: attachment rows without their file, restored as recorded",
			"name", name, "rows", r.MissingWhenTaken)
	}
	o.Logger.Info("drill: snapshot restored and checked", "name", name, "files", out.Files, "duration", out.Duration)
	return out, nil
}

// checkSpace refuses a drill whose restore would not fit in TempDir's free
// space: the database (the live one, or the replica's largest object) plus the
// stored files, or the snapshot archive when larger, with SpaceMargin.
func checkSpace(ctx context.Context, o Options, newest *snapshot.Info) error {
	if o.FreeSpace == nil {
		return nil
	}
	var need int64
	if o.Data != nil {
		var db, files int64
		if fi, err := os.Stat(o.LocalDB); o.LocalDB != "" && err == nil {
			db = fi.Size()
		} else {
			for obj, err := range o.Data.List(ctx, layout.DB) {
				if err != nil {
					return fmt.Errorf("drill: %w", err)
				}
				db = max(db, obj.Size)
			}
		}
		if o.Files != nil {
			for obj, err := range o.Data.List(ctx, layout.Files) {
				if err != nil {
					return fmt.Errorf("drill: %w", err)
				}
				files += obj.Size
			}
		}
		need = db + files
	}
	if newest != nil {
		need = max(need, newest.Size)
	}
	need = int64(float64(need) * SpaceMargin)
	free, err := o.FreeSpace(o.TempDir)
	if err != nil {
		return fmt.Errorf("drill: %w", err)
	}
	if free < need {
		return fmt.Errorf("%w: %s has %d bytes free, the restore needs about %d", ErrNoSpace, o.TempDir, free, need)
	}
	return nil
}
