// Package target turns the configuration into the stores every capability writes
// to: the plain store rooted at S3_PREFIX (an S3 bucket or the local folder), and
// the data view used for db/ and files/, sealed with the bucket key when a
// passphrase is set. keys/, snapshots/ and lease always use the plain store.
package target

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/seal"
)

// Open builds the plain store for the configured target. It does not contact the
// service: the first operation reports an unreachable endpoint or bad credentials.
func Open(ctx context.Context, cfg *config.Config, log *slog.Logger) (objstore.Store, error) {
	if !cfg.Remote() {
		root := cfg.LocalTarget
		if cfg.S3.Prefix != "" {
			root = filepath.Join(root, filepath.FromSlash(cfg.S3.Prefix))
		}
		return objstore.NewLocal(root)
	}
	return objstore.NewS3(ctx, objstore.S3Options{
		Endpoint:        cfg.S3.Endpoint,
		Region:          cfg.S3.Region,
		Bucket:          cfg.S3.Bucket,
		Prefix:          cfg.S3.Prefix,
		AccessKeyID:     cfg.S3.AccessKeyID,
		SecretAccessKey: cfg.S3.SecretAccessKey,
		ForcePathStyle:  cfg.S3.ForcePathStyle,
		Provider:        cfg.S3.Provider,
		CAFile:          cfg.S3.CAFile,
		Logger:          log,
	})
}

// KeyUse says whether a caller may create the bucket key when none exists yet.
type KeyUse int

const (
	// ReadKey loads an existing key only (restore, secondary, check).
	ReadKey KeyUse = iota
	// WriteKey creates the key when the prefix holds no sealed data yet (primary).
	WriteKey
)

// Data returns the store for db/ and files/: sealed with the bucket key when the
// configuration has a passphrase, else the plain store itself (the configuration
// has already refused a remote target without a key unless ALLOW_UNENCRYPTED).
// The key is nil when the data is not sealed.
func Data(ctx context.Context, plain objstore.Store, cfg *config.Config, use KeyUse) (objstore.Store, *seal.Key, error) {
	pass := cfg.Encryption.Passphrase
	if pass == "" {
		return plain, nil, nil
	}
	var (
		key *seal.Key
		err error
	)
	if use == WriteKey {
		key, err = seal.LoadOrCreateKey(ctx, plain, pass, seal.KeyOptions{})
	} else {
		key, err = seal.LoadKey(ctx, plain, pass, seal.KeyOptions{})
	}
	if err != nil {
		return nil, nil, fmt.Errorf("bucket key (passphrase from %s): %w", cfg.Encryption.PassphraseSource, err)
	}
	return seal.NewStore(plain, key), key, nil
}
