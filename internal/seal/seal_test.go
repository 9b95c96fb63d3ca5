package seal_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/vwstream/vwstream/internal/seal"
)

// sizes are the plaintext sizes every round trip covers: empty, one byte, and
// both sides of the 64 KiB chunk boundary.
// testName is the object name the tests seal under.
const testName = "files/attachments/x/y"

var sizes = []int{0, 1, seal.ChunkSize - 1, seal.ChunkSize, seal.ChunkSize + 1, 1<<20 + 7}

func mustKey(t testing.TB) *seal.Key {
	t.Helper()
	k, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sealBytes(t testing.TB, k *seal.Key, plain []byte) []byte {
	t.Helper()
	return sealNamed(t, k, plain, testName)
}

// sealNamed seals plain as the object named name.
func sealNamed(t testing.TB, k *seal.Key, plain []byte, name string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := k.Encrypt(&buf, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func openBytes(k *seal.Key, sealed []byte) ([]byte, error) {
	r, err := k.Decrypt(bytes.NewReader(sealed), testName)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestKey_EncryptDecrypt(t *testing.T) {
	k := mustKey(t)
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			plain := randomBytes(t, n)
			sealed := sealBytes(t, k, plain)
			if got, want := int64(len(sealed)), seal.SealedSize(int64(n)); got != want {
				t.Fatalf("sealed size = %d, want %d", got, want)
			}
			if got, err := seal.PlaintextSize(int64(len(sealed))); err != nil || got != int64(n) {
				t.Fatalf("PlaintextSize = %d, %v; want %d", got, err, n)
			}
			got, err := openBytes(k, sealed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatalf("round trip of %d bytes differs", n)
			}
			// A stock age reader with the identity opens it too.
			ids, err := age.ParseIdentities(strings.NewReader(identityText(t, k)))
			if err != nil {
				t.Fatal(err)
			}
			r, err := age.Decrypt(bytes.NewReader(sealed), ids...)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := io.ReadAll(r); !bytes.Equal(got, plain) {
				t.Fatal("age.Decrypt disagrees")
			}
		})
	}
}

// identityText unwraps k's identity the way a user would: through its wrapped form.
func identityText(t testing.TB, k *seal.Key) string {
	t.Helper()
	wrapped, err := k.WrapWorkFactor("test passphrase", 2)
	if err != nil {
		t.Fatal(err)
	}
	return ageDecryptPassphrase(t, wrapped, "test passphrase")
}

// ageDecryptPassphrase opens a passphrase-encrypted age file, as `age -d` does.
func ageDecryptPassphrase(t testing.TB, data []byte, passphrase string) string {
	t.Helper()
	id, err := age.NewScryptIdentity(passphrase)
	if err != nil {
		t.Fatal(err)
	}
	r, err := age.Decrypt(bytes.NewReader(data), id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The size arithmetic relies on every sealed header having the same length;
// check it on many headers rather than trust the stanza layout.
func TestKey_Encrypt_HeaderLength(t *testing.T) {
	for range 200 {
		sealed := sealBytes(t, mustKey(t), []byte("x"))
		hdr, err := age.ExtractHeader(bytes.NewReader(sealed))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(hdr), seal.HeaderSize; got != want {
			t.Fatalf("header length = %d, want %d:\n%s", got, want, hdr)
		}
	}
}

func TestPlaintextSize(t *testing.T) {
	for _, n := range []int64{0, 1, 100, seal.ChunkSize - 1, seal.ChunkSize, seal.ChunkSize + 1, 2 * seal.ChunkSize, 5*seal.ChunkSize + 3, 1 << 30} {
		got, err := seal.PlaintextSize(seal.SealedSize(n))
		if err != nil || got != n {
			t.Errorf("PlaintextSize(SealedSize(%d)) = %d, %v", n, got, err)
		}
	}
	// Sizes no sealed object can have: shorter than header and one tag, or a
	// final chunk holding only a tag after full chunks.
	for _, size := range []int64{0, seal.PayloadOffset, seal.PayloadOffset + seal.TagSize - 1, seal.SealedSize(seal.ChunkSize) + seal.TagSize} {
		if _, err := seal.PlaintextSize(size); !errors.Is(err, seal.ErrCorrupt) {
			t.Errorf("PlaintextSize(%d) error = %v, want ErrCorrupt", size, err)
		}
	}
}

func TestKey_DecryptReaderAt(t *testing.T) {
	k := mustKey(t)
	plain := randomBytes(t, 3*seal.ChunkSize+100)
	sealed := sealBytes(t, k, plain)
	ra, n, err := k.DecryptReaderAt(bytes.NewReader(sealed), int64(len(sealed)), testName)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(plain)) {
		t.Fatalf("size = %d, want %d", n, len(plain))
	}
	for _, c := range chunkBoundaryRanges(len(plain)) {
		got := make([]byte, c[1]-c[0])
		if _, err := ra.ReadAt(got, int64(c[0])); err != nil && err != io.EOF {
			t.Fatalf("ReadAt [%d,%d): %v", c[0], c[1], err)
		}
		if !bytes.Equal(got, plain[c[0]:c[1]]) {
			t.Fatalf("ReadAt [%d,%d) differs from the plaintext", c[0], c[1])
		}
	}
}

// chunkBoundaryRanges lists [start, end) ranges that begin, end or straddle
// chunk boundaries of an n-byte plaintext.
func chunkBoundaryRanges(n int) [][2]int {
	var out [][2]int
	add := func(a, b int) {
		a, b = max(a, 0), min(b, n)
		if a <= b {
			out = append(out, [2]int{a, b})
		}
	}
	for c := 0; c <= n; c += seal.ChunkSize {
		add(c, c+1)
		add(c-1, c+1)
		add(c-1, c)
		add(c, c+seal.ChunkSize)
		add(c+1, c+2*seal.ChunkSize)
	}
	add(0, n)
	add(n-1, n)
	add(n, n)
	return out
}

// Damage anywhere (header, nonce, a chunk, a tag) must be an error matching
// ErrCorrupt, never different bytes.
func TestKey_Decrypt_FlippedByte(t *testing.T) {
	k := mustKey(t)
	plain := randomBytes(t, 2*seal.ChunkSize+10)
	sealed := sealBytes(t, k, plain)
	positions := []int{0, 30, 100, seal.HeaderSize - 2, seal.HeaderSize + 3, seal.PayloadOffset, seal.PayloadOffset + seal.ChunkSize + 5,
		seal.PayloadOffset + seal.ChunkSize + seal.TagSize + 7, len(sealed) - 20, len(sealed) - 1}
	for _, pos := range positions {
		damaged := bytes.Clone(sealed)
		damaged[pos] ^= 0x01
		if _, err := openBytes(k, damaged); !errors.Is(err, seal.ErrCorrupt) {
			t.Errorf("stream read with byte %d flipped: error = %v, want ErrCorrupt", pos, err)
		}
		ra, n, err := k.DecryptReaderAt(bytes.NewReader(damaged), int64(len(damaged)), testName)
		if err == nil {
			_, err = io.ReadAll(io.NewSectionReader(ra, 0, n))
		}
		if !errors.Is(err, seal.ErrCorrupt) {
			t.Errorf("random access with byte %d flipped: error = %v, want ErrCorrupt", pos, err)
		}
	}
}

// A truncated object is an error for whole reads and for reads of an intact
// first chunk alike.
func TestKey_Decrypt_Truncated(t *testing.T) {
	k := mustKey(t)
	plain := randomBytes(t, 3*seal.ChunkSize)
	sealed := sealBytes(t, k, plain)
	encChunk := seal.ChunkSize + seal.TagSize
	for _, size := range []int{0, 10, seal.HeaderSize, seal.PayloadOffset, seal.PayloadOffset + 1, seal.PayloadOffset + encChunk,
		seal.PayloadOffset + 2*encChunk, seal.PayloadOffset + 2*encChunk + 1, len(sealed) - 1} {
		cut := sealed[:size]
		if _, err := openBytes(k, cut); !errors.Is(err, seal.ErrCorrupt) {
			t.Errorf("stream read of %d bytes: error = %v, want ErrCorrupt", size, err)
		}
		_, _, err := k.DecryptReaderAt(bytes.NewReader(cut), int64(size), testName)
		if !errors.Is(err, seal.ErrCorrupt) {
			t.Errorf("random access to %d bytes: error = %v, want ErrCorrupt", size, err)
		}
	}
}

func TestKey_Decrypt_OtherKey(t *testing.T) {
	sealed := sealBytes(t, mustKey(t), []byte("secret"))
	if _, err := openBytes(mustKey(t), sealed); !errors.Is(err, seal.ErrCorrupt) {
		t.Fatalf("error = %v, want ErrCorrupt", err)
	}
}

// Errors of the source are not damage: the caller may retry them.
func TestKey_Decrypt_SourceError(t *testing.T) {
	k := mustKey(t)
	sealed := sealBytes(t, k, randomBytes(t, 3*seal.ChunkSize))
	boom := errors.New("connection reset")
	r, err := k.Decrypt(io.MultiReader(bytes.NewReader(sealed[:seal.PayloadOffset+100]), errReader{boom}), testName)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(r)
	if !errors.Is(err, boom) || errors.Is(err, seal.ErrCorrupt) {
		t.Fatalf("error = %v, want the source error only", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestKey_String(t *testing.T) {
	k := mustKey(t)
	secret := identityText(t, k)
	i := strings.Index(secret, "AGE-SECRET-KEY-")
	if i < 0 {
		t.Fatalf("no secret key in the identity file:\n%s", secret)
	}
	secret = strings.TrimSpace(secret[i:])
	for _, s := range []string{k.String(), fmt.Sprint(k), fmt.Sprintf("%v %+v", k, k)} {
		if strings.Contains(s, secret) || strings.Contains(strings.ToUpper(s), "SECRET") {
			t.Fatalf("printed key reveals the secret: %s", s)
		}
	}
	if !strings.Contains(k.String(), k.Recipient()) {
		t.Fatalf("String() = %q, want the recipient %s", k.String(), k.Recipient())
	}
}
