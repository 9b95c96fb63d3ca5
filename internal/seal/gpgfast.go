package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// The passphrase mode's data packet (SEIPD version 1, RFC 4880 5.13) is
// written and read here rather than by go-crypto, whose OpenPGP CFB loops
// byte by byte with one cipher call per block: about a third of a snapshot's
// CPU. The session key packet, the S2K and the literal data packet inside
// still come from go-crypto, and the bytes written are exactly those
// go-crypto writes for the same random input (a test compares them, and
// another has the stock gpg decrypt them).
//
// With no resynchronisation (the form SEIPD v1 uses), OpenPGP CFB over the
// packet body is plain CFB-128 with an all-zero IV over the stream
// random(16) || random[14:16] || plaintext || MDC packet, which lets a whole
// buffer be processed one block at a time.

// cfb is CFB-128 that works block by block: reg holds the last ciphertext
// block once encrypted (the keystream of the next), used its consumed bytes.
type cfb struct {
	b       cipher.Block
	reg     [aes.BlockSize]byte
	used    int
	decrypt bool
}

func newCFB(b cipher.Block, decrypt bool) *cfb {
	c := &cfb{b: b, decrypt: decrypt}
	b.Encrypt(c.reg[:], c.reg[:]) // all-zero IV
	return c
}

// XORKeyStream encrypts or decrypts src into dst (which may be src).
func (c *cfb) XORKeyStream(dst, src []byte) {
	const bs = aes.BlockSize
	for len(src) > 0 {
		if c.used == bs {
			c.b.Encrypt(c.reg[:], c.reg[:])
			c.used = 0
		}
		if c.used == 0 && len(src) >= bs {
			// Whole blocks: keystream xor, then the ciphertext feeds back.
			if c.decrypt {
				var ct [bs]byte
				copy(ct[:], src[:bs])
				subtle.XORBytes(dst[:bs], src[:bs], c.reg[:])
				c.reg = ct
			} else {
				subtle.XORBytes(dst[:bs], src[:bs], c.reg[:])
				copy(c.reg[:], dst[:bs])
			}
			c.used = bs
			dst, src = dst[bs:], src[bs:]
			continue
		}
		n := min(bs-c.used, len(src))
		k := c.reg[c.used : c.used+n]
		if c.decrypt {
			var ct [bs]byte
			copy(ct[:n], src[:n])
			subtle.XORBytes(dst[:n], src[:n], k)
			copy(k, ct[:n])
		} else {
			subtle.XORBytes(dst[:n], src[:n], k)
			copy(k, dst[:n])
		}
		c.used += n
		dst, src = dst[n:], src[n:]
	}
}

// partialWriter frames a packet body with OpenPGP partial body lengths,
// choosing the same chunks as go-crypto for the same sequence of writes: it
// buffers, and before a write that finds more than 512 bytes buffered it
// emits one chunk of the largest power of two that fits.
type partialWriter struct {
	w   io.Writer
	buf bytes.Buffer
}

func (p *partialWriter) Write(b []byte) (int, error) {
	if n := p.buf.Len(); n > 512 {
		power := 30
		for 1<<power > n {
			power--
		}
		if _, err := p.w.Write([]byte{224 + byte(power)}); err != nil {
			return 0, err
		}
		if _, err := p.w.Write(p.buf.Next(1 << power)); err != nil {
			return 0, err
		}
	}
	return p.buf.Write(b)
}

// Close writes the last chunk with a definite length (RFC 4880 4.2.2).
func (p *partialWriter) Close() error {
	n := p.buf.Len()
	var hdr []byte
	switch {
	case n < 192:
		hdr = []byte{byte(n)}
	case n < 8384:
		n -= 192
		hdr = []byte{byte(n>>8) + 192, byte(n)}
	default:
		hdr = []byte{255, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
	if _, err := p.w.Write(hdr); err != nil {
		return err
	}
	_, err := p.buf.WriteTo(p.w)
	return err
}

const (
	seipdTag  = 0x80 | 0x40 | 18 // new-format tag of a SEIPD packet
	mdcTag    = 0x80 | 0x40 | 19 // new-format tag of the MDC packet
	mdcLength = 2 + sha1.Size    // the MDC packet: tag, length, SHA-1
)

// mdcWriter encrypts the plaintext packets into the SEIPD body and appends
// the MDC packet on Close.
type mdcWriter struct {
	out *partialWriter
	s   *cfb
	h   hash.Hash
	buf []byte
}

func (m *mdcWriter) Write(p []byte) (int, error) {
	m.h.Write(p)
	if cap(m.buf) < len(p) {
		m.buf = make([]byte, len(p))
	}
	c := m.buf[:len(p)]
	m.s.XORKeyStream(c, p)
	// One write per call, as go-crypto does: the partial-length chunks depend on it.
	if _, err := m.out.Write(c); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (m *mdcWriter) Close() error {
	var t [mdcLength]byte
	t[0], t[1] = mdcTag, sha1.Size
	m.h.Write(t[:2])
	m.h.Sum(t[:2])
	m.s.XORKeyStream(t[:], t[:])
	if _, err := m.out.Write(t[:]); err != nil {
		return err
	}
	return m.out.Close()
}

// gpgSymmetricEncrypt is openpgp.SymmetricallyEncrypt for the passphrase
// mode's configuration (AES-256, no compression, no AEAD, a binary literal
// packet with no name or time).
func gpgSymmetricEncrypt(w io.Writer, passphrase []byte, config *packet.Config) (io.WriteCloser, error) {
	if config.Cipher() != packet.CipherAES256 || config.AEAD() != nil || config.Compression() != packet.CompressionNone {
		return nil, errors.New("fast OpenPGP writer: only AES-256 without AEAD or compression")
	}
	key, err := packet.SerializeSymmetricKeyEncrypted(w, passphrase, config)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write([]byte{seipdTag}); err != nil {
		return nil, err
	}
	out := &partialWriter{w: w}
	if _, err := out.Write([]byte{1}); err != nil { // SEIPD version 1
		return nil, err
	}
	iv := make([]byte, aes.BlockSize+2)
	if _, err := io.ReadFull(config.Random(), iv[:aes.BlockSize]); err != nil {
		return nil, err
	}
	copy(iv[aes.BlockSize:], iv[aes.BlockSize-2:aes.BlockSize])
	s := newCFB(block, false)
	prefix := make([]byte, len(iv))
	s.XORKeyStream(prefix, iv)
	if _, err := out.Write(prefix); err != nil {
		return nil, err
	}
	h := sha1.New()
	h.Write(iv)
	return packet.SerializeLiteral(&mdcWriter{out: out, s: s, h: h}, true, "", 0)
}

// recordReader keeps what is read through it until stop, so that a message
// the fast reader does not handle can be handed whole to go-crypto.
type recordReader struct {
	r    io.Reader
	buf  bytes.Buffer
	stop bool
}

func (r *recordReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if !r.stop {
		r.buf.Write(p[:n])
	}
	return n, err
}

// errNotFast marks a message the fast reader leaves to go-crypto.
var errNotFast = errors.New("not a passphrase SEIPD v1 message")

// gpgFastDecrypt opens a message made of one passphrase session key packet
// (version 4) and one SEIPD v1 packet, what the passphrase mode and
// `gpg --symmetric` write. For any other message it returns errNotFast and a
// reader that replays the message from its start.
func gpgFastDecrypt(r io.Reader, passphrase string) (io.Reader, io.Reader, error) {
	rec := &recordReader{r: r}
	replay := func() io.Reader {
		rec.stop = true
		return io.MultiReader(bytes.NewReader(rec.buf.Bytes()), r)
	}
	p, err := packet.Read(rec)
	if err != nil {
		return nil, replay(), errNotFast
	}
	ske, ok := p.(*packet.SymmetricKeyEncrypted)
	if !ok || ske.Version != 4 {
		return nil, replay(), errNotFast
	}
	p, err = packet.Read(rec)
	if err != nil {
		return nil, replay(), errNotFast
	}
	se, ok := p.(*packet.SymmetricallyEncrypted)
	if !ok || se.Version != 1 || !se.IntegrityProtected {
		return nil, replay(), errNotFast
	}
	key, cf, err := ske.Decrypt([]byte(passphrase))
	if err != nil || cf != packet.CipherAES256 || len(key) != 32 {
		return nil, replay(), errNotFast
	}
	rec.stop = true
	rec.buf = bytes.Buffer{}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, nil, err
	}
	s := newCFB(block, true)
	prefix := make([]byte, aes.BlockSize+2)
	if _, err := io.ReadFull(se.Contents, prefix); err != nil {
		return nil, nil, gpgClassify(markSource(err))
	}
	s.XORKeyStream(prefix, prefix)
	if prefix[aes.BlockSize-2] != prefix[aes.BlockSize] || prefix[aes.BlockSize-1] != prefix[aes.BlockSize+1] {
		return nil, nil, ErrSnapshotKey // the quick check of RFC 4880 5.7
	}
	h := sha1.New()
	h.Write(prefix)
	mr := &mdcReader{r: se.Contents, s: s, h: h}
	md, err := openpgp.ReadMessage(mr, nil, nil, &packet.Config{})
	if err != nil {
		if mr.err != nil {
			return nil, nil, gpgClassify(mr.err)
		}
		return nil, nil, gpgClassify(err)
	}
	if md.IsEncrypted || md.IsSymmetricallyEncrypted || md.IsSigned {
		return nil, nil, fmt.Errorf("%w: unexpected packets inside the encrypted message", ErrCorrupt)
	}
	return &mdcBody{body: md.UnverifiedBody, mdc: mr}, nil, nil
}

// mdcReader decrypts a SEIPD v1 body, holding back the last mdcLength bytes
// (the MDC packet) and hashing the rest.
type mdcReader struct {
	r    io.Reader
	s    *cfb
	h    hash.Hash
	tail []byte // decrypted bytes not yet known not to be the MDC packet
	buf  []byte
	eof  bool
	err  error // a failure of the source, kept for the error report
}

func (m *mdcReader) Read(p []byte) (int, error) {
	for len(m.tail) <= mdcLength && !m.eof {
		if m.buf == nil {
			m.buf = make([]byte, 64<<10+mdcLength)
		}
		k := copy(m.buf, m.tail)
		n, err := m.r.Read(m.buf[k:])
		m.s.XORKeyStream(m.buf[k:k+n], m.buf[k:k+n])
		m.tail = m.buf[:k+n]
		if err == io.EOF {
			m.eof = true
		} else if err != nil {
			m.err = err
			return 0, err
		}
	}
	avail := len(m.tail) - mdcLength
	if avail <= 0 {
		if avail < 0 {
			return 0, io.ErrUnexpectedEOF
		}
		return 0, io.EOF
	}
	n := copy(p, m.tail[:avail])
	m.h.Write(m.tail[:n])
	m.tail = m.tail[n:]
	return n, nil
}

// check reads to the end of the packet and compares the MDC.
func (m *mdcReader) check() error {
	if _, err := io.Copy(io.Discard, m); err != nil {
		return err
	}
	if len(m.tail) != mdcLength {
		return io.ErrUnexpectedEOF
	}
	m.h.Write(m.tail[:2])
	sum := m.h.Sum(nil)
	if m.tail[0] != mdcTag || m.tail[1] != sha1.Size || subtle.ConstantTimeCompare(sum, m.tail[2:]) != 1 {
		return pgperrors.ErrMDCHashMismatch
	}
	return nil
}

// mdcBody is the literal data; at its end it checks the MDC, so that only a
// read ending in io.EOF has seen a genuine message.
type mdcBody struct {
	body io.Reader
	mdc  *mdcReader
	done bool
}

func (b *mdcBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		if cerr := b.mdc.check(); cerr != nil {
			return n, gpgClassify(cerr)
		}
		b.done = true
		return n, io.EOF
	}
	if err != nil {
		return n, gpgClassify(err)
	}
	return n, nil
}
