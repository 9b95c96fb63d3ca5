package seal

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ProtonMail/go-crypto/openpgp/s2k"
)

// SnapshotMode is how snapshot archives are encrypted.
type SnapshotMode string

// Snapshot encryption modes, at most one per configuration.
const (
	SnapshotPlain         SnapshotMode = ""               // no snapshot encryption
	SnapshotGPGPassphrase SnapshotMode = "gpg-passphrase" // GPG_PASSPHRASE / BACKUP_PASSWORD
	SnapshotGPGPublicKey  SnapshotMode = "gpg-public-key" // GPG_PUBLIC_KEY_RING
	SnapshotAgePassphrase SnapshotMode = "age-passphrase" // AGE_PASSPHRASE
	SnapshotAgePublicKey  SnapshotMode = "age-public-key" // AGE_PUBLIC_KEYS
)

// Snapshot archive suffixes added by encryption.
const (
	ExtGPG = ".gpg"
	ExtAge = ".age"
)

// DefaultGPGS2KCount is the iterated-and-salted S2K count of passphrase-encrypted
// snapshots: the largest count OpenPGP can encode, what gpg itself uses for
// symmetric encryption on current hardware is of the same order.
const DefaultGPGS2KCount = 65011712

var (
	// ErrSnapshotKey reports a snapshot that the given passphrase or keys cannot open.
	ErrSnapshotKey = errors.New("wrong passphrase or key for this snapshot")
	// ErrSnapshotNoKey reports a snapshot whose encryption needs a key that was not given.
	ErrSnapshotNoKey = errors.New("no key to open this snapshot")
)

// SnapshotOptions select how snapshot archives are encrypted: exactly one mode.
type SnapshotOptions struct {
	Mode             SnapshotMode
	GPGPassphrase    string
	GPGPublicKeyRing string // ASCII-armored public keys
	AgePassphrase    string
	AgeRecipients    []string // age1... recipients
	// AgeWorkFactor is the scrypt log2(N) for AgePassphrase; 0 takes age's default (18).
	AgeWorkFactor int
	// GPGS2KCount is the S2K iteration count for GPGPassphrase; 0 takes DefaultGPGS2KCount.
	GPGS2KCount int
}

// SnapshotEncrypter encrypts snapshot streams in one configured mode.
type SnapshotEncrypter struct {
	opts       SnapshotOptions
	entities   openpgp.EntityList
	recipients []age.Recipient
}

// NewSnapshotEncrypter checks the keys of opts once, so a bad key ring or
// recipient fails before any data is read.
func NewSnapshotEncrypter(opts SnapshotOptions) (*SnapshotEncrypter, error) {
	e := &SnapshotEncrypter{opts: opts}
	switch opts.Mode {
	case SnapshotPlain:
	case SnapshotGPGPassphrase:
		if opts.GPGPassphrase == "" {
			return nil, errors.New("snapshot encryption: empty GPG passphrase")
		}
	case SnapshotGPGPublicKey:
		ents, err := openpgp.ReadArmoredKeyRing(strings.NewReader(opts.GPGPublicKeyRing))
		if err != nil {
			return nil, fmt.Errorf("snapshot encryption: read GPG public key ring: %w", err)
		}
		if len(ents) == 0 {
			return nil, errors.New("snapshot encryption: GPG public key ring holds no key")
		}
		e.entities = ents
	case SnapshotAgePassphrase:
		if opts.AgePassphrase == "" {
			return nil, errors.New("snapshot encryption: empty age passphrase")
		}
	case SnapshotAgePublicKey:
		rs, err := parseAgeRecipients(opts.AgeRecipients)
		if err != nil {
			return nil, fmt.Errorf("snapshot encryption: parse age recipients: %w", err)
		}
		e.recipients = rs
	default:
		return nil, fmt.Errorf("snapshot encryption: unknown mode %q", opts.Mode)
	}
	return e, nil
}

// Mode returns the encryption mode.
func (e *SnapshotEncrypter) Mode() SnapshotMode { return e.opts.Mode }

// Ext returns the suffix encryption adds to an archive name: .gpg, .age or "".
func (e *SnapshotEncrypter) Ext() string {
	switch e.opts.Mode {
	case SnapshotGPGPassphrase, SnapshotGPGPublicKey:
		return ExtGPG
	case SnapshotAgePassphrase, SnapshotAgePublicKey:
		return ExtAge
	}
	return ""
}

// Keys returns what opens the archives this encrypter writes, and false in the
// public-key modes, where the process holds no private key.
func (e *SnapshotEncrypter) Keys() (SnapshotKeys, bool) {
	switch e.opts.Mode {
	case SnapshotPlain:
		return SnapshotKeys{}, true
	case SnapshotGPGPassphrase:
		return SnapshotKeys{GPGPassphrase: e.opts.GPGPassphrase}, true
	case SnapshotAgePassphrase:
		return SnapshotKeys{AgePassphrase: e.opts.AgePassphrase}, true
	}
	return SnapshotKeys{}, false
}

// gpgConfig pins what go-crypto would otherwise choose: AES-256 (its default is
// AES-128), an iterated and salted SHA-256 S2K that every gpg reads, no OpenPGP
// compression (the archive is already compressed) and the MDC-protected packet
// (SEIPD v1) that gpg 2.2 and later decrypt.
func (e *SnapshotEncrypter) gpgConfig() *packet.Config {
	count := e.opts.GPGS2KCount
	if count == 0 {
		count = DefaultGPGS2KCount
	}
	return &packet.Config{
		DefaultCipher:          packet.CipherAES256,
		DefaultHash:            crypto.SHA256,
		DefaultCompressionAlgo: packet.CompressionNone,
		S2KConfig: &s2k.Config{
			S2KMode:  s2k.IteratedSaltedS2K,
			Hash:     crypto.SHA256,
			S2KCount: count,
		},
	}
}

// Encrypt returns a writer whose plaintext is encrypted to w; Close flushes the
// last packet or chunk (it does not close w). In the plain mode it passes through.
func (e *SnapshotEncrypter) Encrypt(w io.Writer) (io.WriteCloser, error) {
	var (
		wc  io.WriteCloser
		err error
	)
	hints := &openpgp.FileHints{IsBinary: true}
	switch e.opts.Mode {
	case SnapshotPlain:
		return nopWriteCloser{w}, nil
	case SnapshotGPGPassphrase:
		wc, err = gpgSymmetricEncrypt(w, []byte(e.opts.GPGPassphrase), e.gpgConfig())
	case SnapshotGPGPublicKey:
		wc, err = openpgp.Encrypt(w, e.entities, nil, hints, e.gpgConfig())
	case SnapshotAgePassphrase:
		var r *age.ScryptRecipient
		r, err = age.NewScryptRecipient(e.opts.AgePassphrase)
		if err == nil {
			if e.opts.AgeWorkFactor > 0 {
				r.SetWorkFactor(e.opts.AgeWorkFactor)
			}
			wc, err = age.Encrypt(w, r)
		}
	case SnapshotAgePublicKey:
		wc, err = age.Encrypt(w, e.recipients...)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot encryption: %w", err)
	}
	return wc, nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// SnapshotKeys open snapshot archives. Only the fields of the archive's mode matter.
type SnapshotKeys struct {
	GPGPassphrase     string // symmetric archives, or the passphrase of GPGPrivateKeyRing
	GPGPrivateKeyRing string // ASCII-armored secret keys for public-key archives
	AgePassphrase     string
	AgeIdentities     string // age identity file content (AGE-SECRET-KEY-1...)
}

// SnapshotDecrypt returns the plaintext of an archive read from r, choosing the
// scheme by the archive's encryption suffix (ExtGPG, ExtAge or "" for plain).
// Damage is reported by the returned reader when it reaches it, as an error
// matching ErrCorrupt; only a read ending in io.EOF has seen a genuine archive.
// A wrong key matches ErrSnapshotKey, a missing one ErrSnapshotNoKey.
func SnapshotDecrypt(r io.Reader, ext string, keys SnapshotKeys) (io.Reader, error) {
	switch ext {
	case "":
		return r, nil
	case ExtGPG:
		return gpgDecrypt(r, keys)
	case ExtAge:
		return ageDecrypt(r, keys)
	}
	return nil, fmt.Errorf("snapshot decryption: unknown suffix %q", ext)
}

func ageDecrypt(r io.Reader, keys SnapshotKeys) (io.Reader, error) {
	var ids []age.Identity
	if keys.AgePassphrase != "" {
		id, err := age.NewScryptIdentity(keys.AgePassphrase)
		if err != nil {
			return nil, fmt.Errorf("snapshot decryption: %w", err)
		}
		ids = append(ids, id)
	}
	if keys.AgeIdentities != "" {
		parsed, err := age.ParseIdentities(strings.NewReader(keys.AgeIdentities))
		if err != nil {
			return nil, fmt.Errorf("snapshot decryption: parse age identities: %w", err)
		}
		ids = append(ids, parsed...)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: an age snapshot needs AGE_PASSPHRASE or an age identity", ErrSnapshotNoKey)
	}
	dec, err := age.Decrypt(&sourceReader{r: r}, ids...)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			return nil, ErrSnapshotKey
		}
		return nil, classify(err)
	}
	return &plainReader{r: dec}, nil
}

func gpgDecrypt(r io.Reader, keys SnapshotKeys) (io.Reader, error) {
	var ring openpgp.EntityList
	if keys.GPGPrivateKeyRing != "" {
		ents, err := openpgp.ReadArmoredKeyRing(strings.NewReader(keys.GPGPrivateKeyRing))
		if err != nil {
			return nil, fmt.Errorf("snapshot decryption: read GPG private key ring: %w", err)
		}
		ring = ents
	}
	if ring == nil && keys.GPGPassphrase == "" {
		return nil, fmt.Errorf("%w: a GPG snapshot needs GPG_PASSPHRASE or a private key", ErrSnapshotNoKey)
	}
	var src io.Reader = &sourceReader{r: r}
	if ring == nil {
		body, replay, err := gpgFastDecrypt(src, keys.GPGPassphrase)
		if !errors.Is(err, errNotFast) {
			return body, err
		}
		src = replay
	}
	tried := false
	prompt := func(pks []openpgp.Key, symmetric bool) ([]byte, error) {
		// go-crypto asks again after a wrong answer; a second call means the
		// passphrase (or the key's passphrase) was wrong.
		if tried || keys.GPGPassphrase == "" {
			return nil, ErrSnapshotKey
		}
		tried = true
		for _, k := range pks {
			if k.PrivateKey != nil && k.PrivateKey.Encrypted {
				_ = k.PrivateKey.Decrypt([]byte(keys.GPGPassphrase))
			}
		}
		return []byte(keys.GPGPassphrase), nil
	}
	md, err := openpgp.ReadMessage(src, ring, prompt, &packet.Config{})
	if err != nil {
		if errors.Is(err, ErrSnapshotKey) || errors.Is(err, pgperrors.ErrKeyIncorrect) {
			return nil, ErrSnapshotKey
		}
		return nil, gpgClassify(err)
	}
	if !md.IsSymmetricallyEncrypted && !md.IsEncrypted {
		return nil, fmt.Errorf("%w: not an encrypted OpenPGP message", ErrCorrupt)
	}
	return &gpgReader{r: md.UnverifiedBody}, nil
}

// gpgReader reports MDC failures and truncation as ErrCorrupt.
type gpgReader struct{ r io.Reader }

func (g *gpgReader) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err == nil || err == io.EOF {
		return n, err
	}
	return n, gpgClassify(err)
}

func gpgClassify(err error) error {
	var serr *sourceError
	if errors.As(err, &serr) {
		return serr.err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: archive is truncated", ErrCorrupt)
	}
	return fmt.Errorf("%w: %v", ErrCorrupt, err)
}
