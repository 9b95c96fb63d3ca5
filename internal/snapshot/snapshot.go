// Package snapshot takes, lists, prunes and restores full snapshots of a
// Vaultwarden data folder: a consistent state of the database, the included files and a
// manifest, streamed as tar -> gzip|zstd -> OpenPGP|age -> object store with no
// temporary archive, then verified, copied to the extra destinations, pointed to
// by a -latest copy and pruned.
//
// Nothing of a WAL database touches the disk either: the capture opens one
// read transaction, checks and counts the database inside it, and the archive
// reads that transaction's pages through SQLite's pager (the sqlite_dbpage
// table) straight into the database's tar entry, whose size (page count times
// page size) is known before the first page (capture_stream.go). Writers go on
// meanwhile; the transaction ends as soon as the pages are archived (after
// the upload is decided when a fallback folder may need a second pass). Only
// a database in a rollback-journal mode, on which a held read transaction
// would block every writer, is still copied with VACUUM INTO into a temporary
// file beside it, removed when the run ends (Result.DBCopyBytes).
//
// Each archive has an unencrypted sidecar object <name>.json (Info: counts,
// flags, sizes, the archive hash; no file names) so that listing and retention
// know a snapshot's time, size and degraded flag without downloading it.
package snapshot

import (
	"context"
	"log/slog"
	"time"

	"github.com/vwstream/vwstream/internal/notify"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/seal"
)

// Destination is one place snapshots go: the target's plain store or an extra remote.
type Destination struct {
	Name   string         // for humans and results: "target" or the rclone "name:path"
	Store  objstore.Store // rooted where snapshots/ lives
	Verify bool           // read the uploaded archive back in full
}

// Options configure a snapshot run.
type Options struct {
	Source      Source
	Namer       *Namer
	Compression Compression             // CompressGzip (default), CompressZstd or CompressNone
	Encrypter   *seal.SnapshotEncrypter // nil means plain
	Retention   Retention
	// RequireAll fails the run when any extra destination fails; the first
	// destination failing always fails it.
	RequireAll bool
	Version    string          // vwstream version, recorded in the manifest
	Notifier   notify.Notifier // nil for none
	Logger     *slog.Logger
	// Progress, when set, is called with the bytes uploaded so far to the first
	// destination, as they go.
	Progress func(n int64)
	Now      func() time.Time
	// Quiesce, when set, runs around the capture (pre commands, containers
	// stopped, restarted as soon as the data is captured, post commands).
	Quiesce Quiesce
	// Fallback keeps the archive locally when the first destination fails;
	// nil for none (BACKUP_FALLBACK_DIR unset).
	Fallback *Fallback
}

func (o Options) withDefaults() (Options, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Namer == nil {
		n, err := NewNamer(DefaultFilename, time.UTC)
		if err != nil {
			return o, err
		}
		o.Namer = n
	}
	if o.Encrypter == nil {
		e, err := seal.NewSnapshotEncrypter(seal.SnapshotOptions{})
		if err != nil {
			return o, err
		}
		o.Encrypter = e
	}
	return o, nil
}

// Result is the outcome of one run.
type Result struct {
	Name               string        `json:"name"` // archive name under snapshots/
	Time               time.Time     `json:"time"`
	Size               int64         `json:"size"`          // archive bytes
	SHA256             string        `json:"sha256"`        // of the archive bytes
	Files              int           `json:"files"`         // entries, database included
	DBCopyBytes        int64         `json:"db_copy_bytes"` // temporary disk for the database: 0 unless it is not in WAL mode
	Degraded           bool          `json:"degraded"`
	MissingAttachments int           `json:"missing_attachments"`
	Duration           time.Duration `json:"duration_ns"`
	Destinations       []DestResult  `json:"destinations"`
	Local              string        `json:"local,omitempty"`    // the fallback folder keeping the archive the destinations did not get
	Uploaded           []string      `json:"uploaded,omitempty"` // archives kept locally by earlier runs, uploaded by this one
	// Containers stopped for the capture, with their stop windows; SpoolBytes
	// is what was set aside meanwhile (0 when nothing was stopped).
	Containers []Container `json:"containers,omitempty"`
	SpoolBytes int64       `json:"spool_bytes"`
	Error      string      `json:"error,omitempty"`
}

// DestResult is what happened at one destination.
type DestResult struct {
	Name     string   `json:"name"`
	Store    string   `json:"store"`
	OK       bool     `json:"ok"`
	Verified string   `json:"verified,omitempty"` // "archive" (read back and checked), "checksum" or "size"
	Latest   string   `json:"latest,omitempty"`   // the -latest copy
	Pruned   []string `json:"pruned,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// Info describes a stored snapshot. It is also the sidecar object
// snapshots/<name>.json, stored unencrypted beside the archive so listing and
// pruning know a snapshot without downloading it; it therefore holds counts,
// flags, sizes and the archive hash only, never a file name or key.
type Info struct {
	Name               string      `json:"name"`
	Time               time.Time   `json:"time"`
	Size               int64       `json:"size"`
	SHA256             string      `json:"sha256,omitempty"`
	Encryption         string      `json:"encryption"` // gpg, age or none
	Compression        Compression `json:"compression"`
	Degraded           bool        `json:"degraded"`
	MissingAttachments int         `json:"missing_attachments"`
	Files              int         `json:"files,omitempty"`
	Integrity          string      `json:"integrity,omitempty"`
	Version            string      `json:"vwstream_version,omitempty"`
	// Expanded is the size of the archive's tar stream: a restore stops as
	// soon as an archive unpacks to more (a decompression bomb).
	Expanded int64 `json:"expanded_bytes,omitempty"`
	// Sidecar is false for an archive without metadata (written by another
	// tool, or its sidecar lost): then only Name, Time, Size and the suffix
	// facts are known.
	Sidecar bool `json:"-"`
}

// encryptionOf names an archive's encryption from its suffix.
func encryptionOf(name string) string {
	switch _, enc := splitExt(name); enc {
	case seal.ExtGPG:
		return "gpg"
	case seal.ExtAge:
		return "age"
	}
	return "none"
}

// compressionOf names an archive's compression from its suffix.
func compressionOf(name string) Compression {
	switch comp, _ := splitExt(name); comp {
	case ".gz":
		return CompressGzip
	case ".zst":
		return CompressZstd
	}
	return CompressNone
}

// notifyRun reports the run; a failing notifier is logged, never returned.
func (o Options) notifyRun(ctx context.Context, res *Result) {
	if o.Notifier == nil {
		return
	}
	ev := notify.Event{
		Kind:     "snapshot",
		OK:       res.Error == "",
		Name:     res.Name,
		Size:     res.Size,
		Duration: res.Duration,
		Degraded: res.Degraded,
		Error:    res.Error,
	}
	for _, d := range res.Destinations {
		ev.Destinations = append(ev.Destinations, notify.Outcome{Name: d.Name, OK: d.OK, Error: d.Error})
	}
	for _, c := range res.Containers {
		ev.Containers = append(ev.Containers, notify.Container{Name: c.Name, Seconds: c.Seconds, Restarted: c.Restarted, Error: c.Error})
	}
	if err := o.Notifier.Notify(ctx, ev); err != nil {
		o.Logger.Warn("snapshot notification failed", "error", err)
	}
}
