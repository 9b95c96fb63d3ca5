package seal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"filippo.io/age"
	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
)

// ErrWrongKey reports a bucket key given directly (ENCRYPTION_KEY) that is not
// the prefix's own.
var ErrWrongKey = errors.New("not this bucket's key")

// ParseKey reads a bucket key given as an age identity (AGE-SECRET-KEY-1...).
// The error never quotes s.
func ParseKey(s string) (*Key, error) {
	id, err := age.ParseX25519Identity(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("bucket key: not an age X25519 identity (AGE-SECRET-KEY-1...)")
	}
	return &Key{identity: id, recipient: id.Recipient()}, nil
}

// recipientPath is where the bucket key's public recipient is kept, beside the
// wrapped key: it lets a key given directly be checked without the passphrase.
func (o KeyOptions) recipientPath() string {
	return path.Join(path.Dir(o.path()), path.Base(layout.RecipientPath))
}

// storeRecipient writes key's public recipient beside the wrapped key unless
// one is there already (the first writer wins, as with the key itself).
func storeRecipient(ctx context.Context, store objstore.Store, key *Key, opts KeyOptions) error {
	p := opts.recipientPath()
	_, err := store.Put(ctx, p, strings.NewReader(key.Recipient()+"\n"), objstore.PutOptions{IfNoneMatch: true, ContentType: "text/plain"})
	if err != nil && !errors.Is(err, objstore.ErrPrecondition) {
		return fmt.Errorf("store bucket key recipient %s: %w", p, err)
	}
	return nil
}

// CheckKey makes sure key, given directly, is the prefix's bucket key before
// anything is opened or sealed with it: data sealed to another key could not
// be read with the passphrase. It compares key's public recipient with the one
// stored beside the wrapped key, or, in a prefix from before that file, opens
// the header of one sealed object. A prefix with neither has nothing to check
// against: its key must first be created from the passphrase (ErrNoKey).
// Nothing here costs scrypt.
func CheckKey(ctx context.Context, store objstore.Store, key *Key, opts KeyOptions) error {
	p := opts.recipientPath()
	rc, err := store.Get(ctx, p, 0, -1)
	switch {
	case err == nil:
		b, rerr := io.ReadAll(io.LimitReader(rc, 1024))
		rc.Close()
		if rerr != nil {
			return fmt.Errorf("check bucket key against %s: %w", p, rerr)
		}
		if stored := strings.TrimSpace(string(b)); stored != key.Recipient() {
			return fmt.Errorf("%w: %s names %s, the key given is %s", ErrWrongKey, p, stored, key.Recipient())
		}
		return nil
	case !errors.Is(err, objstore.ErrNotFound):
		return fmt.Errorf("check bucket key against %s: %w", p, err)
	}
	for _, prefix := range []string{layout.DB, layout.Files} {
		for info, err := range store.List(ctx, prefix) {
			if err != nil {
				return fmt.Errorf("check bucket key: list %s: %w", prefix, err)
			}
			return opensHeader(ctx, store, key, info.Key)
		}
	}
	return fmt.Errorf("%w at %s: a bucket key given directly has nothing to be checked against; "+
		"set ENCRYPTION_PASSPHRASE as well, and the first start of a primary stores it wrapped with the passphrase", ErrNoKey, opts.path())
}

// AdoptKey makes key, given directly, the bucket key of a prefix that has none
// yet: it stores key wrapped with passphrase (so that the passphrase alone opens
// the data later, as with a key CreateKey made) and its recipient, with the
// same conditional put. When another start stored a key first, key must be
// that one. A prefix that already holds sealed objects is refused (ErrNoKey):
// nothing proves key opens them. The wrap costs one scrypt, once.
func AdoptKey(ctx context.Context, store objstore.Store, key *Key, passphrase string, opts KeyOptions) error {
	if prefix, err := layout.HoldsSealedData(ctx, store); err != nil {
		return err
	} else if prefix != "" {
		return fmt.Errorf("%w at %s, but %s holds sealed objects: a key given directly cannot take its place", ErrNoKey, opts.path(), prefix)
	}
	key.authenticated = true // a new bucket: its objects are authenticated from the start
	data, err := key.WrapWorkFactor(passphrase, opts.workFactor())
	if err != nil {
		return err
	}
	p := opts.path()
	_, err = store.Put(ctx, p, bytes.NewReader(data), objstore.PutOptions{IfNoneMatch: true, ContentType: "application/octet-stream"})
	if errors.Is(err, objstore.ErrPrecondition) {
		return CheckKey(ctx, store, key, opts)
	} else if err != nil {
		return fmt.Errorf("store bucket key %s: %w", p, err)
	}
	return storeRecipient(ctx, store, key, opts)
}

// opensHeader checks that key opens the sealed object's header.
func opensHeader(ctx context.Context, store objstore.Store, key *Key, obj string) error {
	rc, err := store.Get(ctx, obj, 0, PayloadOffset)
	if err != nil {
		return fmt.Errorf("check bucket key against %s: %w", obj, err)
	}
	hdr, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("check bucket key against %s: %w", obj, err)
	}
	if err := checkHeader(hdr); err != nil {
		return fmt.Errorf("check bucket key against %s: %w", obj, err)
	}
	_, err = age.Decrypt(bytes.NewReader(hdr), key.identity)
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		return fmt.Errorf("%w: it does not open %s (sealed to another key)", ErrWrongKey, obj)
	} else if err != nil {
		return fmt.Errorf("check bucket key against %s: %w", obj, err)
	}
	return nil
}
