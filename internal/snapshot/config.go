package snapshot

import (
	"context"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"path/filepath"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/notify"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/objstore/rclone"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/target"
)

// OptionsFromConfig builds the Options of a run from the configuration. The
// notifier is built from NOTIFICATION_*; destinations come from Destinations.
func OptionsFromConfig(cfg *config.Config, version string, log *slog.Logger) (Options, error) {
	namer, err := NewNamer(cfg.Backup.Filename, cfg.Location)
	if err != nil {
		return Options{}, err
	}
	enc, err := seal.NewSnapshotEncrypter(seal.SnapshotOptions{
		Mode:             cfg.Encryption.SnapshotMode,
		GPGPassphrase:    cfg.Encryption.GPGPassphrase,
		GPGPublicKeyRing: cfg.Encryption.GPGPublicKeyRing,
		AgePassphrase:    cfg.Encryption.AgePassphrase,
		AgeRecipients:    cfg.Encryption.AgePublicKeys,
	})
	if err != nil {
		return Options{}, err
	}
	n, err := notify.New(notify.Options{URLs: cfg.Notify.URLs, Level: cfg.Notify.Level,
		Title: cfg.Notify.Title, Body: cfg.Notify.Body, Logger: log})
	if err != nil {
		return Options{}, err
	}
	return Options{
		Source:      SourceFromConfig(cfg),
		Namer:       namer,
		Compression: cfg.Backup.Compression,
		Encrypter:   enc,
		Retention:   Retention{Days: cfg.Backup.RetentionDays, MinKeep: cfg.Backup.MinKeep, Leeway: cfg.Backup.PruningLeeway},
		RequireAll:  cfg.Backup.RequireAll,
		Version:     version,
		Notifier:    n,
		Logger:      log,
	}, nil
}

// SourceFromConfig is what BACKUP_INCLUDE_* and the Vaultwarden folders select.
func SourceFromConfig(cfg *config.Config) Source {
	src := Source{DataFolder: cfg.DataFolder, DBPath: cfg.DBPath, Server: cfg.Server, Folders: map[string]string{}, Files: map[string]string{}}
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
	if cfg.Backup.IncludeConfig {
		rsa := vw.RSAKeyFilename
		if rsa == "" {
			rsa = filepath.Join(cfg.DataFolder, "rsa_key")
		}
		src.Files = rsaAndConfig(cfg.DataFolder, rsa)
	}
	return src
}

// KeysFromConfig returns the keys the configuration holds for opening
// snapshots: the passphrases. Public-key modes need the private key or age
// identity from elsewhere (RestoreOptions.Keys).
func KeysFromConfig(cfg *config.Config) seal.SnapshotKeys {
	return seal.SnapshotKeys{GPGPassphrase: cfg.Encryption.GPGPassphrase, AgePassphrase: cfg.Encryption.AgePassphrase}
}

// Destinations opens the target (first, verified per BACKUP_VERIFY) and every
// BACKUP_EXTRA_REMOTES entry through rclone.
func Destinations(ctx context.Context, cfg *config.Config, log *slog.Logger) ([]Destination, error) {
	main, err := target.Open(ctx, cfg, log)
	if err != nil {
		return nil, fmt.Errorf("open target: %w", err)
	}
	dests := []Destination{{Name: "target", Store: main, Verify: cfg.Backup.Verify}}
	for _, remote := range cfg.Backup.ExtraRemotes {
		st, err := openRemote(ctx, cfg, remote, log)
		if err != nil {
			// An unreachable extra remote fails its own destination in the run
			// (and the run when BACKUP_REQUIRE_ALL), never the main copy.
			log.Warn("extra snapshot remote unavailable", "remote", remote, "error", err)
			st = unavailable{name: remote, err: err}
		}
		dests = append(dests, Destination{Name: remote, Store: st})
	}
	return dests, nil
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

// openRemote opens one rclone destination from RCLONE_CONFIG_<NAME>_*.
func openRemote(ctx context.Context, cfg *config.Config, remote string, log *slog.Logger) (objstore.Store, error) {
	s, err := rclone.New(ctx, remote, rclone.Options{Remotes: cfg.Rclone, Logger: log})
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return s, nil
}

// NewJob returns the job a Scheduler runs for cfg: open the destinations,
// take one snapshot. Errors are also logged and notified by Run.
func NewJob(cfg *config.Config, version string, log *slog.Logger) (func(ctx context.Context) error, error) {
	opts, err := OptionsFromConfig(cfg, version, log)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		dests, err := Destinations(ctx, cfg, log)
		if err != nil {
			return err
		}
		_, err = Run(ctx, opts, dests)
		return err
	}, nil
}
