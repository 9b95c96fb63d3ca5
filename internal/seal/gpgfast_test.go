package seal

import (
	"bytes"
	"crypto"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ProtonMail/go-crypto/openpgp/s2k"

	"github.com/vwstream/vwstream/internal/testenv"
)

// fastConfig is the passphrase mode's configuration with a seeded random
// source, so two writers given it draw the same salt and prefix.
func fastConfig(seed uint64) *packet.Config {
	return &packet.Config{
		Rand:                   rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}),
		DefaultCipher:          packet.CipherAES256,
		DefaultHash:            crypto.SHA256,
		DefaultCompressionAlgo: packet.CompressionNone,
		S2KConfig:              &s2k.Config{S2KMode: s2k.IteratedSaltedS2K, Hash: crypto.SHA256, S2KCount: 65536},
	}
}

// writeSplit writes data to w in the pieces given by sizes (the rest in one).
func writeSplit(t *testing.T, w io.WriteCloser, data []byte, sizes []int) {
	t.Helper()
	for _, n := range sizes {
		n = min(n, len(data))
		if _, err := w.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
	if len(data) > 0 {
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// The fast writer produces exactly go-crypto's bytes for the same random
// input and the same writes, whatever their sizes (the partial-length chunks
// depend on them), and each side reads the other's output.
func TestGPGFast_SameBytesAsGoCrypto(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	cases := map[string][]int{
		"empty":     {0},
		"one byte":  {1},
		"block":     {16},
		"tiny":      {1, 2, 3, 5, 7, 11, 13, 17, 19, 23, 512, 513, 1},
		"512 edge":  {511, 1, 1, 512, 513, 514},
		"large":     {1 << 20, 1<<20 + 3, 65536},
		"pgzip-ish": {32768, 32768, 32768, 32768, 1 << 20, 5},
	}
	for i := 0; i < 5; i++ {
		var sizes []int
		for j := 0; j < 200; j++ {
			sizes = append(sizes, r.IntN(40000))
		}
		cases["random "+string(rune('a'+i))] = sizes
	}
	for name, sizes := range cases {
		t.Run(name, func(t *testing.T) {
			n := 0
			for _, s := range sizes {
				n += s
			}
			plain := data[:min(n, len(data))]
			if name == "empty" {
				plain = nil
			}
			var want, got bytes.Buffer
			lib, err := openpgp.SymmetricallyEncrypt(&want, []byte("pass"), &openpgp.FileHints{IsBinary: true}, fastConfig(7))
			if err != nil {
				t.Fatal(err)
			}
			writeSplit(t, lib, plain, sizes)
			fast, err := gpgSymmetricEncrypt(&got, []byte("pass"), fastConfig(7))
			if err != nil {
				t.Fatal(err)
			}
			writeSplit(t, fast, plain, sizes)
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Fatalf("fast writer: %d bytes differing from go-crypto's %d", got.Len(), want.Len())
			}
			// The fast reader reads go-crypto's output, and go-crypto reads the fast output.
			body, _, err := gpgFastDecrypt(bytes.NewReader(want.Bytes()), "pass")
			if err != nil {
				t.Fatal(err)
			}
			back, err := io.ReadAll(body)
			if err != nil || !bytes.Equal(back, plain) {
				t.Fatalf("fast reader: %d bytes, %v", len(back), err)
			}
			md, err := openpgp.ReadMessage(bytes.NewReader(got.Bytes()), nil, func([]openpgp.Key, bool) ([]byte, error) { return []byte("pass"), nil }, nil)
			if err != nil {
				t.Fatal(err)
			}
			back, err = io.ReadAll(md.UnverifiedBody)
			if err != nil || !bytes.Equal(back, plain) {
				t.Fatalf("go-crypto reader: %d bytes, %v", len(back), err)
			}
		})
	}
}

// Any flipped byte and any truncation of the body fails the fast reader
// with ErrCorrupt (or ErrSnapshotKey where the flip hits the quick check).
func TestGPGFast_Damage(t *testing.T) {
	plain := bytes.Repeat([]byte("vault data "), 20000)
	var ct bytes.Buffer
	w, err := gpgSymmetricEncrypt(&ct, []byte("pass"), fastConfig(3))
	if err != nil {
		t.Fatal(err)
	}
	writeSplit(t, w, plain, []int{1000, 70000, 3})
	b := ct.Bytes()
	read := func(in []byte) error {
		r, err := SnapshotDecrypt(bytes.NewReader(in), ExtGPG, SnapshotKeys{GPGPassphrase: "pass"})
		if err != nil {
			return err
		}
		got, err := io.ReadAll(r)
		if err == nil && !bytes.Equal(got, plain) {
			return errors.New("read back different bytes without an error")
		}
		return err
	}
	if err := read(b); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int{60, 70, 100, 5000, len(b) / 2, len(b) - 30, len(b) - 22, len(b) - 1} {
		bad := bytes.Clone(b)
		bad[off] ^= 0x01
		if err := read(bad); !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrSnapshotKey) {
			t.Errorf("byte %d flipped: %v, want ErrCorrupt", off, err)
		}
	}
	for _, cut := range []int{1, 21, 22, 23, 500, len(b) / 2} {
		if err := read(b[:len(b)-cut]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%d bytes cut: %v, want ErrCorrupt", cut, err)
		}
	}
}

// The stock gpg decrypts the fast writer's output (written in many uneven
// pieces, several MiB), and the fast reader opens what `gpg --symmetric`
// writes with its defaults (compressed, its own S2K and packet lengths).
func TestGPGFast_StockGPG(t *testing.T) {
	gpg := testenv.Tool(t, "gpg")
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	plain := make([]byte, 5<<20+12345)
	for i := range plain {
		plain[i] = byte(r.Uint32() % 7) // compressible, for gpg's own compression
	}
	var sizes []int
	for i := 0; i < 400; i++ {
		sizes = append(sizes, r.IntN(30000))
	}
	e, err := NewSnapshotEncrypter(SnapshotOptions{Mode: SnapshotGPGPassphrase, GPGPassphrase: "pass word", GPGS2KCount: 65536})
	if err != nil {
		t.Fatal(err)
	}
	var ct bytes.Buffer
	w, err := e.Encrypt(&ct)
	if err != nil {
		t.Fatal(err)
	}
	writeSplit(t, w, plain, sizes)
	enc := filepath.Join(dir, "a.gpg")
	if err := os.WriteFile(enc, ct.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gpg, "--batch", "--homedir", home, "--pinentry-mode", "loopback", "--passphrase", "pass word", "-d", enc)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gpg -d: %v: %s", err, stderr.String())
	}
	if !bytes.Equal(out, plain) {
		t.Fatalf("gpg decrypted %d bytes, want the %d written", len(out), len(plain))
	}

	src := filepath.Join(dir, "plain")
	if err := os.WriteFile(src, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(gpg, "--batch", "--homedir", home, "--pinentry-mode", "loopback", "--passphrase", "pass word",
		"--symmetric", "--cipher-algo", "AES256", "-o", filepath.Join(dir, "b.gpg"), src)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gpg --symmetric: %v: %s", err, b)
	}
	f, err := os.Open(filepath.Join(dir, "b.gpg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	body, _, err := gpgFastDecrypt(f, "pass word")
	if errors.Is(err, errNotFast) {
		t.Skip("this gpg writes no SEIPD v1 by default; the fast reader hands it to go-crypto")
	}
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(body)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("fast reader on gpg's output: %d bytes, %v", len(got), err)
	}
}

// BenchmarkGPGPassphrase compares go-crypto's OpenPGP CFB with the fast
// packet writer and reader on 64 MiB written in 1 MiB pieces (pgzip's block).
func BenchmarkGPGPassphrase(b *testing.B) {
	plain := make([]byte, 64<<20)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(plain)
	encrypt := func(b *testing.B, fast bool) []byte {
		var ct bytes.Buffer
		ct.Grow(len(plain) + 1<<20)
		var w io.WriteCloser
		var err error
		if fast {
			w, err = gpgSymmetricEncrypt(&ct, []byte("p"), fastConfig(1))
		} else {
			w, err = openpgp.SymmetricallyEncrypt(&ct, []byte("p"), &openpgp.FileHints{IsBinary: true}, fastConfig(1))
		}
		if err != nil {
			b.Fatal(err)
		}
		for p := plain; len(p) > 0; p = p[1<<20:] {
			if _, err := w.Write(p[:1<<20]); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		return ct.Bytes()
	}
	for _, fast := range []bool{false, true} {
		name := map[bool]string{false: "gocrypto", true: "fast"}[fast]
		b.Run("encrypt/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			for b.Loop() {
				encrypt(b, fast)
			}
		})
		ct := encrypt(b, fast)
		b.Run("decrypt/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			for b.Loop() {
				var r io.Reader
				if fast {
					body, _, err := gpgFastDecrypt(bytes.NewReader(ct), "p")
					if err != nil {
						b.Fatal(err)
					}
					r = body
				} else {
					md, err := openpgp.ReadMessage(bytes.NewReader(ct), nil, func([]openpgp.Key, bool) ([]byte, error) { return []byte("p"), nil }, nil)
					if err != nil {
						b.Fatal(err)
					}
					r = md.UnverifiedBody
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
