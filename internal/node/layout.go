package node

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/filesync"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/restore"
)

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

// syncOptions configures file sync for the node's own data folder.
func syncOptions(cfg *config.Config, store objstore.Store) filesync.Options {
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

// dbFileName is the database's file name inside the data folder.
func dbFileName(cfg *config.Config) string { return filepath.Base(cfg.DBPath) }
