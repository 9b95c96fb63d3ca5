// Package filesync keeps Vaultwarden's side files (attachments, sends, config.json,
// rsa_key*) in the object store as one object per file under files/: an fsnotify
// watcher uploads a file seconds after it stops changing, a periodic full reconcile
// repairs whatever the watcher missed, and deletions are mirrored late, into a
// trash prefix, and never en masse. Restore downloads files/ back into a data
// folder without ever leaving it half written.
package filesync

import (
	"log/slog"
	"path/filepath"
	"time"

	"github.com/vwstream/vwstream/internal/objstore"
)

// Defaults applied by New and Restore to zero Options fields.
const (
	DefaultDebounce          = 250 * time.Millisecond
	DefaultStableFor         = time.Second
	DefaultReconcileInterval = 5 * time.Minute
	DefaultDeleteGrace       = 5 * time.Minute
	DefaultTrashRetention    = 30 * 24 * time.Hour
	DefaultTrashPurgeEvery   = 24 * time.Hour
	DefaultShutdownTimeout   = 30 * time.Second
	// DefaultStallTimeout is how long a store request may go without an
	// answer or a byte of upload before Status reports the store as not
	// answering.
	DefaultStallTimeout = 10 * time.Second
	DefaultParallelism  = 8
	// DefaultRestoreParallelism is higher: a restore is many small GETs that a
	// cold start waits for, and at 20 ms per request 8 in flight left the
	// downloads latency-bound (566 files: 2.2 s at 8, 1.7 s at 16).
	DefaultRestoreParallelism = 16
	DefaultMassDeleteMin      = 10
	DefaultMassDeleteRatio    = 0.5
	DefaultStateDirName       = ".vwstream"
)

// Include is one synced path: a folder, synced recursively, or a single file.
// Name is its fixed name under files/, so a folder configured elsewhere
// (ATTACHMENTS_FOLDER=/srv/att) still lands under files/attachments/.
type Include struct {
	Name string // "attachments", "sends", "icon_cache", "config.json", "rsa_key.pem"
	Path string // absolute local path
	Dir  bool   // a folder synced recursively, else one file
}

// Layout is Vaultwarden's view of the data folder, as vwstream's configuration
// mirrors it, and which parts of it are synced.
type Layout struct {
	DataDir           string
	AttachmentsFolder string // ATTACHMENTS_FOLDER; <DataDir>/attachments when empty
	SendsFolder       string // SENDS_FOLDER; <DataDir>/sends when empty
	IconCacheFolder   string // ICON_CACHE_FOLDER; <DataDir>/icon_cache when empty
	RSAKeyFilename    string // RSA_KEY_FILENAME without extension; <DataDir>/rsa_key when empty

	Attachments, Sends, Config, IconCache bool // SYNC_INCLUDE_*
}

// Includes lists the synced paths of l. Config covers config.json and every
// rsa_key* file Vaultwarden versions have written.
func (l Layout) Includes() []Include {
	or := func(p, def string) string {
		if p == "" {
			return filepath.Join(l.DataDir, def)
		}
		return p
	}
	var inc []Include
	if l.Attachments {
		inc = append(inc, Include{Name: "attachments", Path: or(l.AttachmentsFolder, "attachments"), Dir: true})
	}
	if l.Sends {
		inc = append(inc, Include{Name: "sends", Path: or(l.SendsFolder, "sends"), Dir: true})
	}
	if l.IconCache {
		inc = append(inc, Include{Name: "icon_cache", Path: or(l.IconCacheFolder, "icon_cache"), Dir: true})
	}
	if l.Config {
		inc = append(inc, Include{Name: "config.json", Path: filepath.Join(l.DataDir, "config.json")})
		rsa := or(l.RSAKeyFilename, "rsa_key")
		base := filepath.Base(rsa)
		for _, ext := range []string{".pem", ".pub.pem", ".der", ".pub.der"} {
			inc = append(inc, Include{Name: base + ext, Path: rsa + ext})
		}
	}
	return inc
}

// Options configure a Syncer.
type Options struct {
	// Store receives files/ and trash/files/: the data view (bucket.Data), sealed
	// when a passphrase is set.
	Store objstore.Store
	// DataDir is Vaultwarden's data folder; it anchors StateDir's default.
	DataDir string
	// Includes are the synced paths (Layout.Includes).
	Includes []Include
	// Exclude are absolute paths never synced even inside an include
	// (TMP_FOLDER, the database); StateDir is always excluded.
	Exclude []string
	// StateDir holds the manifest. Default <DataDir>/.vwstream: a dot folder, which
	// file sync never picks up (dot names are skipped) and Vaultwarden never reads.
	StateDir string

	Debounce          time.Duration // quiet time after the last event before a file is looked at
	StableFor         time.Duration // a file is uploaded once unmodified for this long
	ReconcileInterval time.Duration // full reconcile (PRIMARY_SYNC_INTERVAL)
	DeleteGrace       time.Duration // how long a file must stay missing before it is trashed
	TrashRetention    time.Duration // BACKUP_RETENTION_DAYS; < 0 keeps trash forever
	TrashPurgeEvery   time.Duration // how often trash/ is listed for expired objects
	ShutdownTimeout   time.Duration // SYNC_SHUTDOWN_TIMEOUT: Close's flush bound
	Parallelism       int           // uploads in flight
	StallTimeout      time.Duration // a store request without progress this long is an error in Status

	// The mass-deletion guard: deletions in an include are refused when more than
	// MassDeleteMin of its remote files and more than MassDeleteRatio of them
	// are missing locally at once, or when its folder is missing or unreadable.
	MassDeleteMin   int
	MassDeleteRatio float64

	// OnAlarm is called (from the sync goroutine, so it must not block long) when
	// a deletion is refused by the guard; again only after the alarm cleared.
	OnAlarm func(error)
	Logger  *slog.Logger
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.Debounce, DefaultDebounce)
	def(&o.StableFor, DefaultStableFor)
	def(&o.ReconcileInterval, DefaultReconcileInterval)
	def(&o.DeleteGrace, DefaultDeleteGrace)
	def(&o.TrashRetention, DefaultTrashRetention)
	def(&o.TrashPurgeEvery, DefaultTrashPurgeEvery)
	def(&o.ShutdownTimeout, DefaultShutdownTimeout)
	def(&o.StallTimeout, DefaultStallTimeout)
	if o.Parallelism <= 0 {
		o.Parallelism = DefaultParallelism
	}
	if o.MassDeleteMin <= 0 {
		o.MassDeleteMin = DefaultMassDeleteMin
	}
	if o.MassDeleteRatio <= 0 {
		o.MassDeleteRatio = DefaultMassDeleteRatio
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(o.DataDir, DefaultStateDirName)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
