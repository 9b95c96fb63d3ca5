// Package seal encrypts the objects vwstream replicates (db/ and files/ under the
// bucket prefix) so that the bucket holder learns nothing but object names, sizes
// and times. A sealed object is a standard age v1 file encrypted to the bucket's
// X25519 recipient; the matching identity lives under keys/, wrapped with the
// passphrase. docs/FORMAT.md is the specification; this package is the only place
// that knows cipher details.
package seal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"filippo.io/age"
)

// Sizes of the sealed-object format. vwstream always writes exactly one X25519
// stanza, whose base64 fields have fixed lengths, so every header is the same
// length and an object's plaintext size follows from its stored size alone.
const (
	// HeaderSize is the length of the age header of a sealed object: the intro
	// line (22), the X25519 stanza line (54) and body (44), and the MAC line (48).
	HeaderSize = 168
	// NonceSize is the payload nonce that follows the header.
	NonceSize = 16
	// PayloadOffset is where the first encrypted chunk starts.
	PayloadOffset = HeaderSize + NonceSize
	// ChunkSize is the plaintext size of every chunk but the last.
	ChunkSize = 64 * 1024
	// TagSize is the authentication tag added to every chunk.
	TagSize = 16
)

var (
	// ErrCorrupt reports a sealed object that fails authentication: tampered with,
	// truncated, or not written by vwstream. Retrying the read cannot fix it.
	ErrCorrupt = errors.New("sealed object is damaged or not a sealed object")
)

// Key is the bucket key: the X25519 identity that opens every sealed object and
// the recipient that seals them. Its String form names only the public recipient.
type Key struct {
	identity  *age.X25519Identity
	recipient *age.X25519Recipient
	// authenticated records that the bucket's objects are authenticated: true
	// for a new key, and for a wrapped key that carries AuthFlag.
	authenticated bool
}

// GenerateKey returns a new random bucket key.
func GenerateKey() (*Key, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("generate bucket key: %w", err)
	}
	return &Key{identity: id, recipient: id.Recipient(), authenticated: true}, nil
}

// Recipient is the public key ("age1...") that objects are sealed to.
func (k *Key) Recipient() string { return k.recipient.String() }

// String names the key by its public recipient, so that printing or logging a
// Key by accident never reveals the secret half.
func (k *Key) String() string { return "bucket key " + k.Recipient() }

// LogValue keeps the secret out of structured logs for the same reason.
func (k *Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Encrypt returns a writer that seals what is written to it into w as the
// object named name (its key under the bucket prefix, which the object is
// bound to). Close must be called to write the final chunk; it does not close w.
func (k *Key) Encrypt(w io.Writer, name string) (io.WriteCloser, error) {
	wc, err := age.Encrypt(w, objectRecipient{key: k, name: name})
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return wc, nil
}

// EncryptReader returns a reader of the sealed form of r as the object named
// name, for uploads that pull.
func (k *Key) EncryptReader(r io.Reader, name string) (io.Reader, error) {
	sr, err := age.EncryptReader(r, objectRecipient{key: k, name: name})
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return sr, nil
}

// Decrypt returns a reader of the plaintext of the sealed object named name
// read from r. An object not sealed by a holder of the key under that name is
// refused with an error matching ErrForged. Every chunk is authenticated before it is returned, and a missing or damaged
// end is reported as an error matching ErrCorrupt when the reader reaches it:
// only a read that ends in io.EOF has seen the whole, genuine object. Errors of
// r itself are returned unchanged.
func (k *Key) Decrypt(r io.Reader, name string) (io.Reader, error) {
	return k.decrypt(r, name, false)
}

// decrypt is Decrypt; legacy accepts objects sealed before authentication.
func (k *Key) decrypt(r io.Reader, name string, legacy bool) (io.Reader, error) {
	br := bufio.NewReaderSize(&sourceReader{r: r}, 4096)
	hdr, err := br.Peek(PayloadOffset)
	if err != nil {
		if err == io.EOF || err == bufio.ErrBufferFull {
			return nil, fmt.Errorf("%w: shorter than a header (%d bytes)", ErrCorrupt, len(hdr))
		}
		return nil, classify(err)
	}
	if err := checkHeader(hdr); err != nil {
		return nil, err
	}
	dec, err := age.Decrypt(br, objectIdentity{key: k, name: name, legacy: legacy})
	if err != nil {
		return nil, k.openError(err)
	}
	return &plainReader{r: dec}, nil
}

// DecryptReaderAt opens a sealed object of the given stored size for random
// access. It reads the header and authenticates the final chunk before it
// returns, so a truncated object fails here; afterwards each ReadAt reads and
// authenticates only the chunks it covers. It returns the plaintext size.
// Like Decrypt, it refuses an object not sealed under name (ErrForged).
func (k *Key) DecryptReaderAt(src io.ReaderAt, size int64, name string) (io.ReaderAt, int64, error) {
	return k.decryptReaderAt(src, size, name, false)
}

func (k *Key) decryptReaderAt(src io.ReaderAt, size int64, name string, legacy bool) (io.ReaderAt, int64, error) {
	if _, err := PlaintextSize(size); err != nil {
		return nil, 0, err
	}
	hdr := make([]byte, PayloadOffset)
	if n, err := src.ReadAt(hdr, 0); n < len(hdr) {
		if err == nil || err == io.EOF {
			return nil, 0, fmt.Errorf("%w: shorter than a header (%d bytes)", ErrCorrupt, n)
		}
		return nil, 0, err
	}
	if err := checkHeader(hdr); err != nil {
		return nil, 0, err
	}
	ra, n, err := age.DecryptReaderAt(&sourceReaderAt{r: src}, size, objectIdentity{key: k, name: name, legacy: legacy})
	if err != nil {
		return nil, 0, k.openError(err)
	}
	return &plainReaderAt{r: ra, size: n}, n, nil
}

// openError tells a failing source (network, missing object) from a failing
// object: only the latter is ErrCorrupt.
func (k *Key) openError(err error) error {
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		return fmt.Errorf("%w: not sealed to %s", ErrCorrupt, k.Recipient())
	}
	return classify(err)
}

// SealedSize is the stored size of a sealed object holding n plaintext bytes.
func SealedSize(n int64) int64 {
	chunks := (n + ChunkSize - 1) / ChunkSize
	if chunks == 0 {
		chunks = 1 // an empty plaintext is one empty, authenticated chunk
	}
	return PayloadOffset + n + chunks*TagSize
}

// PlaintextSize is the plaintext size of a sealed object stored in size bytes.
// It fails with ErrCorrupt for a size no sealed object can have.
func PlaintextSize(size int64) (int64, error) {
	payload := size - PayloadOffset
	if payload < TagSize {
		return 0, fmt.Errorf("%w: %d bytes is too short", ErrCorrupt, size)
	}
	const encChunk = ChunkSize + TagSize
	chunks := (payload + encChunk - 1) / encChunk
	n := payload - chunks*TagSize
	// Only the last chunk may be short, and only an empty object has an empty chunk.
	want := max((n+ChunkSize-1)/ChunkSize, 1)
	if want != chunks {
		return 0, fmt.Errorf("%w: %d bytes is not a possible sealed size", ErrCorrupt, size)
	}
	return n, nil
}

// checkHeader verifies the fixed layout of a sealed header (the first
// PayloadOffset bytes): one X25519 stanza and nothing else. age authenticates
// the contents; this only guarantees the length that PlaintextSize relies on.
func checkHeader(b []byte) error {
	const (
		intro  = "age-encryption.org/v1\n"
		stanza = "-> X25519 "
		footer = "--- "
	)
	ok := len(b) >= HeaderSize &&
		string(b[:len(intro)]) == intro &&
		string(b[22:22+len(stanza)]) == stanza &&
		b[75] == '\n' && b[119] == '\n' &&
		string(b[120:120+len(footer)]) == footer &&
		b[HeaderSize-1] == '\n' &&
		bytes.Count(b[:HeaderSize], []byte{'\n'}) == 4
	if !ok {
		return fmt.Errorf("%w: header is not a single X25519 stanza", ErrCorrupt)
	}
	return nil
}
