package seal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"filippo.io/age"
	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
)

// DefaultWorkFactor is the scrypt work factor (log2 of N) used to wrap the bucket
// key: age's own default, about a second of CPU on a small machine per unwrap.
const DefaultWorkFactor = 18

// maxWrappedKeySize bounds how much of keys/... is read: a wrapped key is ~400 bytes.
const maxWrappedKeySize = 64 * 1024

var (
	// ErrWrongPassphrase reports a passphrase that does not unwrap the bucket key.
	ErrWrongPassphrase = errors.New("wrong passphrase for the bucket key")
	// ErrNoKey reports a bucket prefix without a wrapped bucket key.
	ErrNoKey = errors.New("no bucket key")
)

// KeyOptions say where the bucket key lives and how new wrappings are made.
type KeyOptions struct {
	// Path is the key object's name; layout.KeyPath when empty.
	Path string
	// WorkFactor is the scrypt work factor for keys this call wraps; DefaultWorkFactor
	// when 0. Lower values are for tests only.
	WorkFactor int
}

func (o KeyOptions) path() string {
	if o.Path == "" {
		return layout.KeyPath
	}
	return o.Path
}

func (o KeyOptions) workFactor() int {
	if o.WorkFactor == 0 {
		return DefaultWorkFactor
	}
	return o.WorkFactor
}

// Wrap encrypts the key's identity with passphrase as a standard age file (scrypt
// recipient, DefaultWorkFactor) that `age -d` opens with the passphrase alone.
func (k *Key) Wrap(passphrase string) ([]byte, error) {
	return k.WrapWorkFactor(passphrase, DefaultWorkFactor)
}

// WrapWorkFactor is Wrap with an explicit scrypt work factor (log2 of N, 1..30).
func (k *Key) WrapWorkFactor(passphrase string, logN int) ([]byte, error) {
	if passphrase == "" {
		return nil, errors.New("wrap bucket key: empty passphrase")
	}
	if logN < 1 || logN > 30 {
		return nil, fmt.Errorf("wrap bucket key: scrypt work factor %d out of range 1..30", logN)
	}
	r, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		return nil, fmt.Errorf("wrap bucket key: %w", err)
	}
	r.SetWorkFactor(logN)

	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	// The scrypt run inside Encrypt left its working memory as garbage, as in
	// Unwrap: hand it back now, on every path that wraps (a new bucket's
	// first start, an adopted ENCRYPTION_KEY, a passphrase change).
	debug.FreeOSMemory()
	if err != nil {
		return nil, fmt.Errorf("wrap bucket key: %w", err)
	}
	// The same layout as age-keygen output, so the decrypted file is an ordinary
	// identity file for `age -d -i`.
	fmt.Fprintf(w, "# vwstream bucket key: opens every object under db/ and files/\n")
	fmt.Fprintf(w, "# public key: %s\n", k.Recipient())
	if k.authenticated {
		fmt.Fprintf(w, "%s\n", AuthFlag)
	}
	fmt.Fprintf(w, "%s\n", k.identity.String())
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("wrap bucket key: %w", err)
	}
	return buf.Bytes(), nil
}

// Unwrap opens a key made by Wrap. A passphrase that does not fit returns an
// error matching ErrWrongPassphrase; no error ever contains the passphrase.
func Unwrap(data []byte, passphrase string) (*Key, error) {
	if passphrase == "" {
		return nil, errors.New("unwrap bucket key: empty passphrase")
	}
	hdr, err := age.ExtractHeader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("unwrap bucket key: not an age file: %w", err)
	}
	if !bytes.Contains(hdr, []byte("\n-> scrypt ")) {
		return nil, errors.New("unwrap bucket key: not wrapped with a passphrase")
	}
	id, err := age.NewScryptIdentity(passphrase)
	if err != nil {
		return nil, fmt.Errorf("unwrap bucket key: %w", err)
	}
	r, err := age.Decrypt(bytes.NewReader(data), id)
	// scrypt's working memory (128*8*2^logN bytes: 256 MiB at the default
	// cost) is garbage now. Hand it back at once: left to the collector, the
	// heap it set the pace for would grow to twice that before the next cycle,
	// which a small serverless instance does not have.
	debug.FreeOSMemory()
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		return nil, ErrWrongPassphrase
	} else if err != nil {
		return nil, fmt.Errorf("unwrap bucket key: %w", err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, maxWrappedKeySize))
	if err != nil {
		return nil, fmt.Errorf("unwrap bucket key: %w", err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(plain))
	if err != nil {
		return nil, fmt.Errorf("unwrap bucket key: parse identity: %w", err)
	}
	if len(ids) != 1 {
		return nil, fmt.Errorf("unwrap bucket key: want one identity, found %d", len(ids))
	}
	x, ok := ids[0].(*age.X25519Identity)
	if !ok {
		return nil, fmt.Errorf("unwrap bucket key: identity is %T, not X25519", ids[0])
	}
	return &Key{identity: x, recipient: x.Recipient(), authenticated: hasAuthFlag(plain)}, nil
}

// LoadKey reads and unwraps the bucket key. It is what every command uses once a
// prefix holds sealed data: a missing key is then an error matching ErrNoKey,
// never a reason to make a new one.
func LoadKey(ctx context.Context, store objstore.Store, passphrase string, opts KeyOptions) (*Key, error) {
	_, key, err := loadKey(ctx, store, passphrase, opts)
	return key, err
}

func loadKey(ctx context.Context, store objstore.Store, passphrase string, opts KeyOptions) (etag string, key *Key, err error) {
	path := opts.path()
	info, err := store.Stat(ctx, path)
	if errors.Is(err, objstore.ErrNotFound) {
		return "", nil, fmt.Errorf("%w at %s; the data under db/ and files/ cannot be decrypted without it", ErrNoKey, path)
	} else if err != nil {
		return "", nil, fmt.Errorf("load bucket key %s: %w", path, err)
	}
	rc, err := store.Get(ctx, path, 0, -1)
	if errors.Is(err, objstore.ErrNotFound) {
		return "", nil, fmt.Errorf("%w at %s; the data under db/ and files/ cannot be decrypted without it", ErrNoKey, path)
	} else if err != nil {
		return "", nil, fmt.Errorf("load bucket key %s: %w", path, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxWrappedKeySize))
	if err != nil {
		return "", nil, fmt.Errorf("load bucket key %s: %w", path, err)
	}
	key, err = Unwrap(data, passphrase)
	if errors.Is(err, ErrWrongPassphrase) {
		return "", nil, fmt.Errorf("%w (%s)", ErrWrongPassphrase, path)
	} else if err != nil {
		return "", nil, fmt.Errorf("load bucket key %s: %w", path, err)
	}
	return info.ETag, key, nil
}

// CreateKey generates a bucket key and stores it wrapped with passphrase, only if
// no key exists yet (a conditional put): when another node won the race, its key
// is loaded and returned instead, so a prefix never has two keys.
func CreateKey(ctx context.Context, store objstore.Store, passphrase string, opts KeyOptions) (*Key, error) {
	key, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	data, err := key.WrapWorkFactor(passphrase, opts.workFactor())
	if err != nil {
		return nil, err
	}
	path := opts.path()
	_, err = store.Put(ctx, path, bytes.NewReader(data), objstore.PutOptions{IfNoneMatch: true, ContentType: "application/octet-stream"})
	if errors.Is(err, objstore.ErrPrecondition) {
		return LoadKey(ctx, store, passphrase, opts)
	} else if err != nil {
		return nil, fmt.Errorf("store bucket key %s: %w", path, err)
	}
	return key, storeRecipient(ctx, store, key, opts)
}

// LoadOrCreateKey loads the bucket key, creating it only while the prefix holds no
// object under layout.Sealed (db/, files/, and trash/ with file sync's deleted files). With sealed data present and the key missing it
// returns the ErrNoKey error of LoadKey: a new key could not open that data.
// It is the primary's: it also stores the key's public recipient when a prefix
// from an earlier version lacks it, so the key can later be given directly.
func LoadOrCreateKey(ctx context.Context, store objstore.Store, passphrase string, opts KeyOptions) (*Key, error) {
	key, err := LoadKey(ctx, store, passphrase, opts)
	if err == nil {
		return key, storeRecipient(ctx, store, key, opts)
	}
	if !errors.Is(err, ErrNoKey) {
		return nil, err
	}
	if prefix, lerr := layout.HoldsSealedData(ctx, store); lerr != nil {
		return nil, lerr
	} else if prefix != "" {
		return nil, err
	}
	return CreateKey(ctx, store, passphrase, opts)
}

// ChangePassphrase re-wraps the bucket key with a new passphrase. Data is not
// touched. The put is conditional on the key object being unchanged since it
// was read, so two concurrent changes cannot silently overwrite each other.
func ChangePassphrase(ctx context.Context, store objstore.Store, oldPassphrase, newPassphrase string, opts KeyOptions) (*Key, error) {
	etag, key, err := loadKey(ctx, store, oldPassphrase, opts)
	if err != nil {
		return nil, err
	}
	data, err := key.WrapWorkFactor(newPassphrase, opts.workFactor())
	if err != nil {
		return nil, err
	}
	path := opts.path()
	if etag == "" {
		return nil, fmt.Errorf("change passphrase of %s: the store gave no ETag, so the replacement cannot be made conditional", path)
	}
	_, err = store.Put(ctx, path, bytes.NewReader(data), objstore.PutOptions{IfMatch: etag, ContentType: "application/octet-stream"})
	if errors.Is(err, objstore.ErrPrecondition) {
		return nil, fmt.Errorf("change passphrase of %s: the key changed while it was re-wrapped, try again: %w", path, err)
	} else if err != nil {
		return nil, fmt.Errorf("change passphrase of %s: %w", path, err)
	}
	return key, nil
}
