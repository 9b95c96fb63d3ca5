// Package wiring is where the configuration meets the capabilities: it turns
// the one parsed config.Config into the typed options each package below
// takes (snapshot runs and their destinations, file sync and its restore, the
// health rules) and builds the process-wide services once (the notifier, the
// snapshot namer). cmd/vwstream and internal/node call it; the packages it
// configures never see the configuration.
package wiring

import (
	"context"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vwstream/vwstream/internal/alert"
	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/drill"
	"github.com/vwstream/vwstream/internal/filesync"
	"github.com/vwstream/vwstream/internal/head"
	"github.com/vwstream/vwstream/internal/notify"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/objstore/rclone"
	"github.com/vwstream/vwstream/internal/restore"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/status"
)

// Notifier builds the process's notifier from NOTIFICATION_*.
func Notifier(cfg *config.Config, log *slog.Logger) (*notify.Service, error) {
	return notify.New(notify.Options{URLs: cfg.Notify.URLs, Level: cfg.Notify.Level,
		Title: cfg.Notify.Title, Body: cfg.Notify.Body, Logger: log})
}

// Pinger is the dead man's switch of HEALTHCHECK_PING_URL, nil without one.
func Pinger(cfg *config.Config, log *slog.Logger) *notify.Pinger {
	return notify.NewPinger(cfg.Alert.PingURL, log)
}

// FallbackStore is BACKUP_FALLBACK_DIR as a store, nil when it is unset.
func FallbackStore(cfg *config.Config) (objstore.Store, error) {
	if cfg.Backup.FallbackDir == "" {
		return nil, nil
	}
	st, err := objstore.NewLocal(cfg.Backup.FallbackDir)
	if err != nil {
		return nil, fmt.Errorf("BACKUP_FALLBACK_DIR: %w", err)
	}
	return st, nil
}

// Namer compiles BACKUP_FILENAME in TZ: how snapshots are named and found.
func Namer(cfg *config.Config) (*snapshot.Namer, error) {
	return snapshot.NewNamer(cfg.Backup.Filename, cfg.Location)
}

// SnapshotOptions builds the options of a snapshot run. The notifier and the
// namer are the process's own (Notifier, Namer).
func SnapshotOptions(cfg *config.Config, version string, namer *snapshot.Namer, n *notify.Service, log *slog.Logger) (snapshot.Options, error) {
	enc, err := seal.NewSnapshotEncrypter(seal.SnapshotOptions{
		Mode:             cfg.Encryption.SnapshotMode,
		GPGPassphrase:    cfg.Encryption.GPGPassphrase,
		GPGPublicKeyRing: cfg.Encryption.GPGPublicKeyRing,
		AgePassphrase:    cfg.Encryption.AgePassphrase,
		AgeRecipients:    cfg.Encryption.AgePublicKeys,
	})
	if err != nil {
		return snapshot.Options{}, err
	}
	var notifier notify.Notifier // a nil *Service must not become a non-nil Notifier
	if n != nil {
		notifier = n
	}
	var fallback *snapshot.Fallback
	if fb, err := FallbackStore(cfg); err != nil {
		return snapshot.Options{}, err
	} else if fb != nil {
		fallback = &snapshot.Fallback{Store: fb, MaxBytes: cfg.Backup.FallbackMaxBytes}
	}
	return snapshot.Options{
		Source:      SnapshotSource(cfg),
		Namer:       namer,
		Compression: cfg.Backup.Compression,
		Encrypter:   enc,
		Retention:   snapshot.Retention{Days: cfg.Backup.RetentionDays, MinKeep: cfg.Backup.MinKeep, Leeway: cfg.Backup.PruningLeeway},
		RequireAll:  cfg.Backup.RequireAll,
		Version:     version,
		Notifier:    notifier,
		Fallback:    fallback,
		Logger:      log,
	}, nil
}

// SnapshotSource is what BACKUP_INCLUDE_* and the Vaultwarden folders select.
func SnapshotSource(cfg *config.Config) snapshot.Source {
	src := snapshot.Source{DataFolder: cfg.DataFolder, DBPath: cfg.DBPath, Server: cfg.Server, Folders: map[string]string{}, Files: map[string]string{}}
	vw := cfg.Vaultwarden
	if cfg.Backup.IncludeAttachments {
		src.Folders["attachments"] = vw.AttachmentsFolder
		src.AttachmentsFolder = vw.AttachmentsFolder
	}
	if cfg.Backup.IncludeSends {
		src.Folders["sends"] = vw.SendsFolder
	}
	if cfg.Backup.IncludeIconCache {
		src.Folders["icon_cache"] = vw.IconCacheFolder
	}
	for _, dir := range cfg.Backup.Sources {
		src.Folders[snapshot.SourcesEntry+filepath.Base(dir)] = dir
	}
	if cfg.Backup.IncludeConfig {
		rsa := vw.RSAKeyFilename
		if rsa == "" {
			rsa = filepath.Join(cfg.DataFolder, "rsa_key")
		}
		src.Files = snapshot.RSAAndConfig(cfg.DataFolder, rsa)
	}
	return src
}

// SnapshotKeys returns the keys the configuration holds for opening snapshots:
// the passphrases. Public-key modes need the private key or age identity from
// elsewhere.
func SnapshotKeys(cfg *config.Config) seal.SnapshotKeys {
	return seal.SnapshotKeys{GPGPassphrase: cfg.Encryption.GPGPassphrase, AgePassphrase: cfg.Encryption.AgePassphrase}
}

// Destinations are where a snapshot goes: main, the process's plain store of
// the target (verified per BACKUP_VERIFY; instrumented by a node, so its
// uploads show in /metrics), then every BACKUP_EXTRA_REMOTES entry through
// rclone. An extra remote that cannot be opened fails its own destination in
// the run (and the run when BACKUP_REQUIRE_ALL), never the main copy.
func Destinations(ctx context.Context, cfg *config.Config, main objstore.Store, log *slog.Logger) []snapshot.Destination {
	dests := []snapshot.Destination{{Name: "target", Store: main, Verify: cfg.Backup.Verify}}
	for _, remote := range cfg.Backup.ExtraRemotes {
		var st objstore.Store
		s, err := rclone.New(ctx, remote, rclone.Options{Remotes: cfg.Rclone, Logger: log})
		if err != nil {
			log.Warn("extra snapshot remote unavailable", "remote", remote, "error", err)
			st = unavailable{name: remote, err: err}
		} else {
			st = s
		}
		dests = append(dests, snapshot.Destination{Name: remote, Store: st})
	}
	return dests
}

// unavailable stands in for a remote that could not be opened: every
// operation returns the reason.
type unavailable struct {
	name string
	err  error
}

func (u unavailable) fail() error { return fmt.Errorf("open %s: %w", u.name, u.err) }

func (u unavailable) Put(context.Context, string, io.Reader, objstore.PutOptions) (objstore.ObjectInfo, error) {
	return objstore.ObjectInfo{}, u.fail()
}
func (u unavailable) Get(context.Context, string, int64, int64) (io.ReadCloser, error) {
	return nil, u.fail()
}
func (u unavailable) Stat(context.Context, string) (objstore.ObjectInfo, error) {
	return objstore.ObjectInfo{}, u.fail()
}
func (u unavailable) List(context.Context, string) iter.Seq2[objstore.ObjectInfo, error] {
	return func(yield func(objstore.ObjectInfo, error) bool) { yield(objstore.ObjectInfo{}, u.fail()) }
}
func (u unavailable) Delete(context.Context, ...string) error { return u.fail() }
func (u unavailable) Copy(context.Context, string, string) (objstore.ObjectInfo, error) {
	return objstore.ObjectInfo{}, u.fail()
}
func (u unavailable) String() string { return "rclone " + u.name + " (unavailable)" }

// FileLayout is the configured Vaultwarden data folder as file sync sees it.
// For DATA_FOLDER itself the configured paths are used as they are; for
// another folder (a restore's staging folder) they move with it: folders
// configured inside DATA_FOLDER keep their place relative to it, folders
// outside it land in dataDir under their own name.
func FileLayout(cfg *config.Config, dataDir string) filesync.Layout {
	rebase := func(p string) string {
		if p == "" || dataDir == cfg.DataFolder {
			return p // the live data folder: the configured paths as they are
		}
		rel, err := filepath.Rel(cfg.DataFolder, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			rel = filepath.Base(p)
		}
		return filepath.Join(dataDir, rel)
	}
	vw := cfg.Vaultwarden
	return filesync.Layout{
		DataDir:           dataDir,
		AttachmentsFolder: rebase(vw.AttachmentsFolder),
		SendsFolder:       rebase(vw.SendsFolder),
		IconCacheFolder:   rebase(vw.IconCacheFolder),
		RSAKeyFilename:    rebase(vw.RSAKeyFilename),
		Attachments:       cfg.Sync.IncludeAttachments,
		Sends:             cfg.Sync.IncludeSends,
		Config:            cfg.Sync.IncludeConfig,
		IconCache:         cfg.Sync.IncludeIconCache,
	}
}

// RestoreFiles returns the restore step that fills a staging folder with files/.
func RestoreFiles(cfg *config.Config, store objstore.Store) restore.FilesFunc {
	return func(ctx context.Context, dir string) (int, error) {
		res, err := filesync.Restore(ctx, filesync.RestoreOptions{
			Store:    store,
			DataDir:  dir,
			Includes: FileLayout(cfg, dir).Includes(),
		})
		return res.Files, err
	}
}

// SyncOptions configures file sync for the node's own data folder.
func SyncOptions(cfg *config.Config, store objstore.Store) filesync.Options {
	retention := time.Duration(-1) // BACKUP_RETENTION_DAYS=0 keeps trash forever
	if cfg.Backup.RetentionDays > 0 {
		retention = time.Duration(cfg.Backup.RetentionDays) * 24 * time.Hour
	}
	return filesync.Options{
		Store:             store,
		DataDir:           cfg.DataFolder,
		Includes:          FileLayout(cfg, cfg.DataFolder).Includes(),
		Exclude:           []string{cfg.Vaultwarden.TmpFolder, cfg.DBPath},
		ReconcileInterval: cfg.Sync.PrimaryInterval,
		TrashRetention:    retention,
		ShutdownTimeout:   cfg.Sync.ShutdownTimeout,
	}
}

// StatusLimits derives the health rules from the configuration:
//   - primary: DB lag and file sync age under HEALTHCHECK_MAX_SYNC_AGE; with
//     BACKUP_ENABLED, newest snapshot under BACKUP_MAX_AGE;
//   - persistent secondary: it pulls every SECONDARY_SYNC_INTERVAL, so its last
//     pull may be that plus HEALTHCHECK_MAX_SYNC_AGE old; it takes no snapshots;
//   - serverless secondary: it restores once at start; no age rule.
func StatusLimits(cfg *config.Config) status.Limits {
	l := status.Limits{MaxSyncAge: cfg.Health.MaxSyncAge, StaleAfter: status.DefaultStaleAfter}
	if cfg.Backup.Enabled {
		l.MaxSnapshotAge = cfg.Backup.MaxAge
	}
	if cfg.Role == config.RoleSecondary {
		l.MaxSnapshotAge = 0
		l.MaxSyncAge += cfg.Sync.SecondaryInterval
		if cfg.Mode == config.ModeServerless {
			l.MaxSyncAge = 0
		}
	}
	return l
}

// AlertOptions are the thresholds of the node's alerts (REPLICATION_ALERT_AFTER,
// BACKUP_MAX_AGE with BACKUP_ENABLED, DISK_FREE_MIN on the data and temp
// folders, UNHEALTHY_AFTER, ALERT_REPEAT); the caller adds the board, the
// notifier and the probe of the child.
func AlertOptions(cfg *config.Config) alert.Options {
	o := alert.Options{
		Repeat:           cfg.Alert.Repeat,
		ReplicationAfter: cfg.Alert.ReplicationAfter,
		DiskFreeMin:      cfg.Alert.DiskFreeMin,
		DiskPaths:        []string{cfg.DataFolder, os.TempDir()},
		UnhealthyAfter:   cfg.Alert.UnhealthyAfter,
	}
	if cfg.Backup.Enabled {
		o.SnapshotMaxAge = cfg.Backup.MaxAge
	}
	return o
}

// DrillOptions are a restore drill's: the replica of data (files as file sync
// lays them out, attachments checked when synced) and the newest snapshot of
// plain when BACKUP_ENABLED or a snapshot key is configured, restored in the
// temp folder after a free-space check.
func DrillOptions(cfg *config.Config, data, plain objstore.Store) (drill.Options, error) {
	o := drill.Options{
		Data:      data,
		DBName:    filepath.Base(cfg.DBPath),
		Files:     RestoreFiles(cfg, data),
		LocalDB:   cfg.DBPath,
		FreeSpace: alert.FreeSpace,
	}
	if cfg.Sync.IncludeAttachments {
		o.Attachments = func(dir string) string { return FileLayout(cfg, dir).AttachmentsFolder }
		o.LiveAttachments = FileLayout(cfg, cfg.DataFolder).AttachmentsFolder
	}
	keys := SnapshotKeys(cfg)
	switch mode := cfg.Encryption.SnapshotMode; {
	case mode == seal.SnapshotGPGPublicKey || mode == seal.SnapshotAgePublicKey:
		o.Note = "snapshots are encrypted to public keys this host cannot decrypt with: they are not drilled (vwstream verify with the private key checks them)"
	case cfg.Backup.Enabled || keys.GPGPassphrase != "" || keys.AgePassphrase != "":
		namer, err := Namer(cfg)
		if err != nil {
			return o, err
		}
		o.Snapshots, o.Namer, o.Keys = plain, namer, keys
	}
	if cfg.Server != nil { // no replica of a server database: its dumps are in the snapshots
		o.Data, o.Files, o.Attachments, o.LiveAttachments, o.LocalDB = nil, nil, nil, "", ""
		o.Note = strings.TrimSpace("a server database has no replica: only snapshots are drilled. " + o.Note)
	}
	return o, nil
}

// CheckHeadFiles compares config.json and rsa_key* as a restore staged them in
// stage with the copies the replica's head recorded (head.CheckFiles): an
// older copy put back in the bucket is refused by name.
func CheckHeadFiles(ctx context.Context, cfg *config.Config, data objstore.Store, stage string) error {
	h, _, err := head.Read(ctx, data)
	if err != nil {
		return err
	}
	includes := FileLayout(cfg, stage).Includes()
	return h.CheckFiles(func(key string) (string, bool) { return filesync.LocalPath(includes, key) })
}
