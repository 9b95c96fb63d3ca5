package seal_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"filippo.io/age"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/vwstream/vwstream/internal/seal"
)

func snapshotModes(t *testing.T) []struct {
	name string
	opts seal.SnapshotOptions
	keys seal.SnapshotKeys
} {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	const pass = "snapshot passphrase"
	return []struct {
		name string
		opts seal.SnapshotOptions
		keys seal.SnapshotKeys
	}{
		{"gpg passphrase", seal.SnapshotOptions{Mode: seal.SnapshotGPGPassphrase, GPGPassphrase: pass, GPGS2KCount: 65536}, seal.SnapshotKeys{GPGPassphrase: pass}},
		{"age passphrase", seal.SnapshotOptions{Mode: seal.SnapshotAgePassphrase, AgePassphrase: pass, AgeWorkFactor: 10}, seal.SnapshotKeys{AgePassphrase: pass}},
		{"age recipients", seal.SnapshotOptions{Mode: seal.SnapshotAgePublicKey, AgeRecipients: []string{id.Recipient().String()}}, seal.SnapshotKeys{AgeIdentities: id.String()}},
		{"plain", seal.SnapshotOptions{}, seal.SnapshotKeys{}},
	}
}

func encryptSnapshot(t *testing.T, e *seal.SnapshotEncrypter, plain []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := e.Encrypt(&b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Every mode reads back what it wrote; damage is ErrCorrupt (except plain,
// which has no integrity of its own), a wrong key ErrSnapshotKey.
func TestSnapshotEncrypter_Roundtrip(t *testing.T) {
	plain := randomBytes(t, 200<<10)
	for _, m := range snapshotModes(t) {
		t.Run(m.name, func(t *testing.T) {
			e, err := seal.NewSnapshotEncrypter(m.opts)
			if err != nil {
				t.Fatal(err)
			}
			ct := encryptSnapshot(t, e, plain)
			r, err := seal.SnapshotDecrypt(bytes.NewReader(ct), e.Ext(), m.keys)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("decrypted %d bytes, %v; want the %d written", len(got), err, len(plain))
			}
			if m.opts.Mode == seal.SnapshotPlain {
				return
			}
			if bytes.Contains(ct, plain[:64]) {
				t.Fatal("ciphertext contains the plaintext")
			}
			for name, bad := range map[string][]byte{
				"truncated": ct[:len(ct)-100],
				"tampered":  flip(ct, len(ct)/2),
			} {
				r, err := seal.SnapshotDecrypt(bytes.NewReader(bad), e.Ext(), m.keys)
				if err == nil {
					_, err = io.ReadAll(r)
				}
				if !errors.Is(err, seal.ErrCorrupt) {
					t.Errorf("%s: %v, want ErrCorrupt", name, err)
				}
			}
			wrong := seal.SnapshotKeys{GPGPassphrase: "wrong", AgePassphrase: "wrong"}
			if m.opts.Mode == seal.SnapshotAgePublicKey {
				other, _ := age.GenerateX25519Identity()
				wrong = seal.SnapshotKeys{AgeIdentities: other.String()}
			}
			if _, err := seal.SnapshotDecrypt(bytes.NewReader(ct), e.Ext(), wrong); !errors.Is(err, seal.ErrSnapshotKey) {
				t.Errorf("wrong key: %v, want ErrSnapshotKey", err)
			}
			if _, err := seal.SnapshotDecrypt(bytes.NewReader(ct), e.Ext(), seal.SnapshotKeys{}); !errors.Is(err, seal.ErrSnapshotNoKey) {
				t.Errorf("no key: %v, want ErrSnapshotNoKey", err)
			}
		})
	}
}

// The passphrase mode writes AES-256 with an iterated and salted S2K, not
// go-crypto's AES-128 default.
func TestSnapshotEncrypter_GPGCipher(t *testing.T) {
	e, err := seal.NewSnapshotEncrypter(seal.SnapshotOptions{Mode: seal.SnapshotGPGPassphrase, GPGPassphrase: "p"})
	if err != nil {
		t.Fatal(err)
	}
	ct := encryptSnapshot(t, e, []byte("hello"))
	p, err := packet.Read(bytes.NewReader(ct))
	if err != nil {
		t.Fatal(err)
	}
	ske, ok := p.(*packet.SymmetricKeyEncrypted)
	if !ok {
		t.Fatalf("first packet %T, want a symmetric-key encrypted session key", p)
	}
	if got, want := ske.CipherFunc, packet.CipherAES256; got != want {
		t.Fatalf("cipher %v, want AES-256 (%v)", got, want)
	}
}

// A bad key ring or recipient is refused before any data is written.
func TestNewSnapshotEncrypter_BadKeys(t *testing.T) {
	for _, o := range []seal.SnapshotOptions{
		{Mode: seal.SnapshotGPGPublicKey, GPGPublicKeyRing: "not a key"},
		{Mode: seal.SnapshotAgePublicKey, AgeRecipients: []string{"age1notarecipient"}},
		{Mode: seal.SnapshotGPGPassphrase},
		{Mode: "rot13"},
	} {
		if _, err := seal.NewSnapshotEncrypter(o); err == nil {
			t.Errorf("%+v accepted", o.Mode)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}
