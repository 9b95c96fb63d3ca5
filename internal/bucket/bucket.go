// Package target turns the configuration into the stores every capability writes
// to: the plain store rooted at S3_PREFIX (an S3 bucket or the local folder), and
// the data view used for db/ and files/, sealed with the bucket key when a
// passphrase is set. keys/, snapshots/ and lease always use the plain store.
package bucket

import (
	"context"
	"errors"
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
		CAPEM:           cfg.S3.CAPEM,
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
// configuration has a passphrase (the key unwrapped from keys/) or the key
// itself (ENCRYPTION_KEY, checked against the prefix), else the plain store
// itself (the configuration has already refused a remote target without a key
// unless ALLOW_UNENCRYPTED).
// It returns once the key is loaded, so a wrong passphrase is its error.
func Data(ctx context.Context, plain objstore.Store, cfg *config.Config, use KeyUse) (objstore.Store, error) {
	data, ready := DataLater(ctx, plain, cfg, use)
	if err := ready(ctx); err != nil {
		return nil, err
	}
	return data, nil
}

// DataLater is Data returning at once, the bucket key still loading (a second
// of scrypt at the default cost): what the caller does meanwhile with the
// store (list, plan, send its first requests) overlaps the unwrap, and reading
// or writing contents waits for the key. ready waits for it and returns the
// key's error, which callers report instead of the errors it caused.
func DataLater(ctx context.Context, plain objstore.Store, cfg *config.Config, use KeyUse) (data objstore.Store, ready func(context.Context) error) {
	if !cfg.Sealed() {
		// Never plaintext on a sealed prefix, whatever ALLOW_UNENCRYPTED says.
		if err := seal.CheckUnsealed(ctx, plain); err != nil {
			err = fmt.Errorf("this bucket is encrypted: set ENCRYPTION_PASSPHRASE or ENCRYPTION_KEY (%w)", err)
			refused := seal.NewPendingStore(plain, func() (*seal.Key, error) { return nil, err })
			return refused, refused.Ready
		}
		return plain, func(context.Context) error { return nil }
	}
	sealed := seal.NewPendingStore(plain, func() (*seal.Key, error) { return Key(ctx, plain, cfg, use) })
	return sealed, sealed.Ready
}

// BucketKey loads the key that seals db/ and files/: the key itself
// (ENCRYPTION_KEY), checked against the prefix without scrypt, or the one
// unwrapped from keys/ with the passphrase. With WriteKey, a prefix without a
// key gets one: generated, or the given key wrapped with the passphrase.
func Key(ctx context.Context, plain objstore.Store, cfg *config.Config, use KeyUse) (*seal.Key, error) {
	pass := cfg.Encryption.Passphrase
	if cfg.Encryption.Key != "" {
		key, err := seal.ParseKey(cfg.Encryption.Key)
		if err == nil {
			err = seal.CheckKey(ctx, plain, key, seal.KeyOptions{})
		}
		if errors.Is(err, seal.ErrNoKey) && use == WriteKey && pass != "" {
			// A new prefix: the primary stores the key, wrapped with the passphrase.
			err = seal.AdoptKey(ctx, plain, key, pass, seal.KeyOptions{})
		}
		if err == nil && use == WriteKey {
			_, err = seal.Upgrade(ctx, plain, key, pass, seal.KeyOptions{})
		}
		if err != nil {
			return nil, fmt.Errorf("ENCRYPTION_KEY: %w", err)
		}
		return key, nil
	}
	load := seal.LoadKey
	if use == WriteKey {
		load = seal.LoadOrCreateKey
	}
	key, err := load(ctx, plain, pass, seal.KeyOptions{})
	if err == nil && use == WriteKey {
		// The primary makes a prefix from before object authentication refuse
		// unauthenticated objects from now on (docs/FORMAT.md, Authentication).
		_, err = seal.Upgrade(ctx, plain, key, pass, seal.KeyOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("bucket key (passphrase from %s): %w", cfg.Encryption.PassphraseSource, err)
	}
	return key, nil
}

// AfterKey waits for the bucket key and returns its error when loading it
// failed, else err. A wrong passphrase fails every read that waited for the
// key; the key's error is the one line worth reporting. And work that read no
// contents (nothing to restore) has not proven the key yet: this does.
func AfterKey(ctx context.Context, ready func(context.Context) error, err error) error {
	kerr := ready(ctx)
	if kerr == nil || (err != nil && ctx.Err() != nil) {
		return err
	}
	return kerr
}
