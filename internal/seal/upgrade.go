package seal

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"time"

	"filippo.io/age"
	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
)

// AuthFlag is the line a wrapped bucket key carries once the bucket's objects
// are authenticated. The wrapped key is itself authenticated by the
// passphrase, so nobody without it can take the line away again.
const AuthFlag = "# vwstream: objects are authenticated (docs/FORMAT.md)"

// markerPath is the upgrade marker, beside the wrapped key: it records for
// readers given the key directly (ENCRYPTION_KEY) that the bucket's objects are
// authenticated. Its content is a tag only a key holder can compute.
func (o KeyOptions) markerPath() string {
	return path.Join(path.Dir(o.path()), path.Base(layout.MarkerPath))
}

func hasAuthFlag(plain []byte) bool {
	for line := range bytes.Lines(plain) {
		if string(bytes.TrimSpace(line)) == AuthFlag {
			return true
		}
	}
	return false
}

// markerContent is the upgrade marker's content for k.
func (k *Key) markerContent() ([]byte, error) {
	ak, err := k.authKey()
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, ak)
	m.Write([]byte("vwstream/v1 objects authenticated " + k.Recipient()))
	return []byte("vwstream objects authenticated " + hex.EncodeToString(m.Sum(nil)) + "\n"), nil
}

// readMarker reports whether the bucket has the upgrade marker for k. A marker
// that is not k's is an error: someone wrote it who does not hold the key.
func readMarker(ctx context.Context, store objstore.Store, k *Key, opts KeyOptions) (bool, error) {
	p := opts.markerPath()
	rc, err := store.Get(ctx, p, 0, -1)
	if errors.Is(err, objstore.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("read %s: %w", p, err)
	}
	got, err := io.ReadAll(io.LimitReader(rc, 1024))
	rc.Close()
	if err != nil {
		return false, fmt.Errorf("read %s: %w", p, err)
	}
	want, err := k.markerContent()
	if err != nil {
		return false, err
	}
	if !hmac.Equal(got, want) {
		return false, fmt.Errorf("%s: %w", p, ErrForged)
	}
	return true, nil
}

// acceptsLegacy reports whether objects sealed before authentication are still
// accepted: only while the bucket is not upgraded (neither the wrapped key's
// flag nor the marker).
func acceptsLegacy(ctx context.Context, store objstore.Store, k *Key) (bool, error) {
	if k.authenticated {
		return false, nil
	}
	done, err := readMarker(ctx, store, k, KeyOptions{})
	return !done, err
}

// Upgraded says what Upgrade did.
type Upgraded struct {
	Checked  int      // sealed objects whose authentication was checked
	Resealed int      // objects sealed before authentication, sealed again under their name
	Damaged  []string // objects that could not be opened, left as they are
}

// Upgrade makes a bucket written before object authentication existed refuse
// unauthenticated objects from now on, in place: every object under db/,
// files/ and trash/ that is not authenticated yet is opened and sealed again
// under its name (same plaintext, conditional on its ETag), then the wrapped
// key gets AuthFlag (when passphrase is given: a scrypt unwrap and wrap, once)
// and the marker is written (the marker last: its presence means the rest is
// done). It is the primary's, at start, before anything is read or written;
// on an upgraded bucket it costs one request. Objects that
// were forged before the upgrade are accepted by it: it trusts what the bucket
// holds the first time, as any reader before it did.
func Upgrade(ctx context.Context, store objstore.Store, key *Key, passphrase string, opts KeyOptions) (Upgraded, error) {
	var res Upgraded
	done, err := readMarker(ctx, store, key, opts)
	if err != nil || done {
		return res, err
	}
	if err := resealAll(ctx, store, key, &res); err != nil {
		return res, err
	}
	if !key.authenticated && passphrase != "" {
		if err := flagKey(ctx, store, key, passphrase, opts); err != nil {
			return res, err
		}
	}
	content, err := key.markerContent()
	if err != nil {
		return res, err
	}
	p := opts.markerPath()
	if _, err := store.Put(ctx, p, bytes.NewReader(content), objstore.PutOptions{ContentType: "text/plain"}); err != nil {
		return res, fmt.Errorf("store %s: %w", p, err)
	}
	key.authenticated = true
	return res, nil
}

func resealAll(ctx context.Context, store objstore.Store, key *Key, res *Upgraded) error {
	ready := make(chan struct{})
	close(ready)
	legacy := &Store{inner: store, key: key, keyReady: ready, legacySeen: time.Now()}
	for _, prefix := range layout.Sealed {
		var infos []objstore.ObjectInfo
		for info, err := range store.List(ctx, prefix) {
			if err != nil {
				return fmt.Errorf("upgrade: list %s: %w", prefix, err)
			}
			infos = append(infos, info)
		}
		for _, info := range infos {
			res.Checked++
			ok, err := isAuthentic(ctx, store, key, info.Key)
			if errors.Is(err, objstore.ErrNotFound) || ok {
				continue
			} else if errors.Is(err, ErrCorrupt) {
				res.Damaged = append(res.Damaged, info.Key)
				continue
			} else if err != nil {
				return err
			}
			err = reseal(ctx, legacy, info)
			if errors.Is(err, objstore.ErrPrecondition) || errors.Is(err, objstore.ErrNotFound) {
				// Replaced or deleted meanwhile: what is there now is not ours to change.
				continue
			} else if errors.Is(err, ErrCorrupt) {
				res.Damaged = append(res.Damaged, info.Key)
				continue
			} else if err != nil {
				return err
			}
			res.Resealed++
		}
	}
	return nil
}

// reseal opens an object in legacy mode and seals it again under its name, on
// the condition that it is still the object listed.
func reseal(ctx context.Context, legacy *Store, info objstore.ObjectInfo) error {
	rc, err := legacy.Get(ctx, info.Key, 0, -1)
	if err != nil {
		return fmt.Errorf("upgrade %s: %w", info.Key, err)
	}
	defer rc.Close()
	opts := objstore.PutOptions{IfMatch: info.ETag}
	if info.ETag == "" {
		opts = objstore.PutOptions{}
	}
	if _, err := legacy.Put(ctx, info.Key, rc, opts); err != nil {
		return fmt.Errorf("upgrade %s: %w", info.Key, err)
	}
	return nil
}

// isAuthentic reads the header of a sealed object and reports whether it is
// sealed under its name. Damage is an error matching ErrCorrupt.
func isAuthentic(ctx context.Context, store objstore.Store, key *Key, name string) (bool, error) {
	rc, err := store.Get(ctx, name, 0, PayloadOffset)
	if err != nil {
		return false, err
	}
	hdr, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return false, fmt.Errorf("upgrade: read %s: %w", name, err)
	}
	if err := checkHeader(hdr); err != nil {
		return false, fmt.Errorf("upgrade %s: %w", name, err)
	}
	_, err = age.DecryptHeader(hdr[:HeaderSize], objectIdentity{key: key, name: name})
	if errors.Is(err, ErrForged) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("upgrade %s: %w: %v", name, ErrCorrupt, err)
	}
	return true, nil
}

// flagKey wraps the bucket key again with AuthFlag, on the condition that the
// wrapped key is unchanged since it was read.
func flagKey(ctx context.Context, store objstore.Store, key *Key, passphrase string, opts KeyOptions) error {
	etag, stored, err := loadKey(ctx, store, passphrase, opts)
	if err != nil {
		return err
	}
	if stored.Recipient() != key.Recipient() {
		return fmt.Errorf("%w: %s holds %s", ErrWrongKey, opts.path(), stored.Recipient())
	}
	if stored.authenticated {
		return nil
	}
	stored.authenticated = true
	data, err := stored.WrapWorkFactor(passphrase, opts.workFactor())
	if err != nil {
		return err
	}
	p := opts.path()
	if _, err := store.Put(ctx, p, bytes.NewReader(data), objstore.PutOptions{IfMatch: etag, ContentType: "application/octet-stream"}); err != nil {
		return fmt.Errorf("store %s with the authentication flag: %w", p, err)
	}
	return nil
}
