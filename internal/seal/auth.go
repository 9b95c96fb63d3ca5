package seal

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"
)

// Object authentication (docs/FORMAT.md, "Authentication"). age alone seals to a
// public recipient, so anyone who can write the bucket could seal objects that
// open with the bucket key. vwstream closes that by choosing the ephemeral
// X25519 secret of each object's one stanza instead of drawing it at random:
//
//	auth key  = HKDF-SHA-256(ikm = the identity's 32-byte X25519 secret, salt = none, info = AuthInfo)
//	ephemeral = HMAC-SHA-256(auth key, uint32be(len(name)) || name || file key)
//
// where name is the object's key relative to the bucket prefix (files/config.json,
// db/...), except that trash/files/<path>@<unix time> is bound to files/<path>,
// the name it was sealed under before file sync moved it to the trash. A reader
// unwraps the file key as age does, recomputes the ephemeral secret, and refuses
// the object unless the stanza's share is X25519(ephemeral, basepoint). The
// object stays a standard age file of the same size; only the holder of the
// identity can compute a share that passes, and a share is bound to one name,
// so a forged, renamed or swapped object is refused.

// AuthInfo is the HKDF info string that derives the authentication key.
const AuthInfo = "vwstream.org/v1/object-authentication"

// ErrForged reports a sealed object that the bucket key opens but that was not
// sealed by a holder of it under this name: sealed by someone who knows only the
// public recipient, or a genuine object renamed or swapped. It also matches
// ErrCorrupt: the object is unusable either way.
var ErrForged = errors.New("not sealed by a holder of the bucket key under this name (forged, renamed or swapped)")

type forgedError struct{}

func (forgedError) Error() string        { return ErrForged.Error() }
func (forgedError) Is(target error) bool { return target == ErrForged || target == ErrCorrupt }

// secret is the identity's 32-byte X25519 scalar; publicKey its public point.
func (k *Key) secret() ([]byte, error)    { return bech32Data(k.identity.String()) }
func (k *Key) publicKey() ([]byte, error) { return bech32Data(k.Recipient()) }

func b64(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

// authKey derives the key that authenticates objects and the upgrade marker.
func (k *Key) authKey() ([]byte, error) {
	s, err := k.secret()
	if err != nil {
		return nil, err
	}
	return hkdf.Key(sha256.New, s, nil, AuthInfo, 32)
}

// AuthName is the name an object is bound to: its key, except that a file in
// the trash (trash/files/<path>@<unix time>) keeps the name it had under files/.
func AuthName(key string) string {
	rest, ok := strings.CutPrefix(key, "trash/")
	if !ok {
		return key
	}
	i := strings.LastIndexByte(rest, '@')
	if i < 0 || i == len(rest)-1 || strings.Trim(rest[i+1:], "0123456789") != "" {
		return key
	}
	return rest[:i]
}

// ephemeral is the X25519 secret of the stanza of the object named name whose
// file key is fileKey.
func (k *Key) ephemeral(name string, fileKey []byte) ([]byte, error) {
	ak, err := k.authKey()
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, ak)
	var n [4]byte
	name = AuthName(name)
	binary.BigEndian.PutUint32(n[:], uint32(len(name)))
	m.Write(n[:])
	m.Write([]byte(name))
	m.Write(fileKey)
	return m.Sum(nil), nil
}

// objectRecipient seals one named object: an age X25519 stanza whose ephemeral
// secret is derived as above (the wrapping is age's, step for step).
type objectRecipient struct {
	key  *Key
	name string
}

func (r objectRecipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	eph, err := r.key.ephemeral(r.name, fileKey)
	if err != nil {
		return nil, err
	}
	pub, err := r.key.publicKey()
	if err != nil {
		return nil, err
	}
	share, err := curve25519.X25519(eph, curve25519.Basepoint)
	if err != nil {
		return nil, err
	}
	shared, err := curve25519.X25519(eph, pub)
	if err != nil {
		return nil, err
	}
	wrapKey, err := hkdf.Key(sha256.New, shared, append(append([]byte{}, share...), pub...), "age-encryption.org/v1/X25519", chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.New(wrapKey)
	if err != nil {
		return nil, err
	}
	body := aead.Seal(nil, make([]byte, chacha20poly1305.NonceSize), fileKey, nil)
	return []*age.Stanza{{Type: "X25519", Args: []string{b64(share)}, Body: body}}, nil
}

// objectIdentity opens one named object: age's X25519 unwrap, then the check
// of the stanza's share. legacy accepts objects without it (written before
// the bucket was upgraded to authenticated objects).
type objectIdentity struct {
	key    *Key
	name   string
	legacy bool
}

func (i objectIdentity) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	fileKey, err := i.key.identity.Unwrap(stanzas)
	if err != nil || i.legacy {
		return fileKey, err
	}
	ok, err := i.key.authentic(i.name, fileKey, stanzas)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, forgedError{}
	}
	return fileKey, nil
}

// authentic reports whether the one X25519 stanza carries the share derived
// for name and fileKey.
func (k *Key) authentic(name string, fileKey []byte, stanzas []*age.Stanza) (bool, error) {
	if len(stanzas) != 1 || stanzas[0].Type != "X25519" || len(stanzas[0].Args) != 1 {
		return false, nil
	}
	got, err := base64.RawStdEncoding.Strict().DecodeString(stanzas[0].Args[0])
	if err != nil {
		return false, nil
	}
	eph, err := k.ephemeral(name, fileKey)
	if err != nil {
		return false, err
	}
	want, err := curve25519.X25519(eph, curve25519.Basepoint)
	if err != nil {
		return false, err
	}
	return hmac.Equal(got, want), nil
}

// bech32Data decodes the data part of an age key string (age1... or
// AGE-SECRET-KEY-1...), which age has already validated.
func bech32Data(s string) ([]byte, error) {
	const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
	s = strings.ToLower(s)
	sep := strings.LastIndexByte(s, '1')
	if sep < 1 || len(s)-sep-1 < 6 {
		return nil, errors.New("bucket key: malformed bech32 string")
	}
	data := s[sep+1 : len(s)-6]
	var out []byte
	var acc uint32
	var bits uint
	for _, c := range []byte(data) {
		v := strings.IndexByte(charset, c)
		if v < 0 {
			return nil, errors.New("bucket key: malformed bech32 string")
		}
		acc = acc<<5 | uint32(v)
		bits += 5
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
		}
	}
	if len(out) != 32 {
		return nil, fmt.Errorf("bucket key: %d-byte key, want 32", len(out))
	}
	return out, nil
}
