package seal_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the test vector under testdata/vector")

// The test vector of docs/FORMAT.md: a bucket prefix holding a wrapped key and
// one sealed object, with the passphrase and the plaintext beside them.
const (
	vectorDir        = "testdata/vector"
	vectorPassphrase = "vwstream test vector"
	vectorObject     = "files/note.txt"
)

// ageDecryptWithPassphrase runs `age -d -o out in` as a user would.
func ageDecryptWithPassphrase(t *testing.T, in, out, passphrase string) {
	t.Helper()
	if output, err := testenv.AgeDecryptPassphrase(t, in, out, passphrase); err != nil {
		t.Fatalf("age -d %s: %v\n%s", in, err, output)
	}
}

// ageDecryptWithIdentity runs `age -d -i identity -o out in`.
func ageDecryptWithIdentity(t *testing.T, identity, in, out string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), testenv.Tool(t, "age"), "-d", "-i", identity, "-o", out, in)
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("age -d -i %s %s: %v\n%s", identity, in, err, output)
	}
}

// A user with the stock age CLI and the passphrase alone can read what the
// Store wrote into a local backup folder, following docs/FORMAT.md.
func TestStore_AgeCLI(t *testing.T) {
	root := t.TempDir()
	local, err := objstore.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	const passphrase = "a passphrase with spaces & symbols"
	key, err := seal.LoadOrCreateKey(t.Context(), local, passphrase, testKeyOpts)
	if err != nil {
		t.Fatal(err)
	}
	plain := randomBytes(t, 3*seal.ChunkSize+17)
	if _, err := seal.NewStore(local, key).Put(t.Context(), "db/ltx/0/0000000001-0000000001.ltx", bytes.NewReader(plain), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	work := t.TempDir()
	idFile := filepath.Join(work, "id.txt")
	ageDecryptWithPassphrase(t, filepath.Join(root, "keys", "age-identity.age"), idFile, passphrase)
	out := filepath.Join(work, "out")
	ageDecryptWithIdentity(t, idFile, filepath.Join(root, "db", "ltx", "0", "0000000001-0000000001.ltx"), out)
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("age CLI output: %d bytes, %v; want the %d bytes stored", len(got), err, len(plain))
	}
}

// vectorPlaintext is the plaintext of the vector object: text spanning two
// chunks, so the vector exercises a full chunk and a short final one.
func vectorPlaintext() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < seal.ChunkSize+1000; i++ {
		fmt.Fprintf(&b, "vwstream sealed-object test vector, line %d\n", i)
	}
	return b.Bytes()
}

// TestVector checks the committed vector with this package and with the age
// CLI, so the format cannot drift from what is documented and already stored.
// go test ./internal/seal -run TestVector -update rewrites it. vector-legacy
// is the same prefix as written before objects were authenticated: the age CLI
// still opens it, and so does a Store while the prefix is not upgraded, but an
// authenticated read refuses it.
func TestVector(t *testing.T) {
	for _, dir := range []string{vectorDir, vectorDir + "-legacy"} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			legacy := dir != vectorDir
			keyPath := filepath.Join(dir, filepath.FromSlash(layout.KeyPath))
			objPath := filepath.Join(dir, filepath.FromSlash(vectorObject))
			plainPath := filepath.Join(dir, "plaintext", filepath.FromSlash(vectorObject))
			if *update && !legacy {
				writeVector(t, keyPath, objPath, plainPath)
			}
			checkVector(t, dir, keyPath, objPath, plainPath, legacy)
		})
	}
}

func checkVector(t *testing.T, dir, keyPath, objPath, plainPath string, legacy bool) {
	wrapped, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := os.ReadFile(objPath)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := os.ReadFile(plainPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain, vectorPlaintext()) {
		t.Fatal("vector plaintext differs from vectorPlaintext()")
	}

	key, err := seal.Unwrap(wrapped, vectorPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	got, err := openNamed(key, sealed, vectorObject)
	switch {
	case legacy && !errors.Is(err, seal.ErrForged):
		t.Fatalf("authenticated read of the legacy vector: %v, want ErrForged", err)
	case !legacy && (err != nil || !bytes.Equal(got, plain)):
		t.Fatalf("Go decryption of the vector: %d bytes, %v", len(got), err)
	}
	if _, err := openNamed(key, sealed, "files/other.txt"); !legacy && !errors.Is(err, seal.ErrForged) {
		t.Fatalf("the vector object read under another name: %v, want ErrForged", err)
	}
	// Through a Store on the folder, as restore reads it.
	local, err := objstore.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := getAll(t, seal.NewStore(local, key), vectorObject, 0, -1); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Store read of the vector: %d bytes, %v", len(got), err)
	}
	if n, err := seal.PlaintextSize(int64(len(sealed))); err != nil || n != int64(len(plain)) {
		t.Fatalf("PlaintextSize of the vector = %d, %v; want %d", n, err, len(plain))
	}

	work := t.TempDir()
	idFile := filepath.Join(work, "id.txt")
	ageDecryptWithPassphrase(t, keyPath, idFile, vectorPassphrase)
	out := filepath.Join(work, "out")
	ageDecryptWithIdentity(t, idFile, objPath, out)
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("age CLI decryption of the vector: %d bytes, %v", len(got), err)
	}
}

func openNamed(k *seal.Key, sealed []byte, name string) ([]byte, error) {
	r, err := k.Decrypt(bytes.NewReader(sealed), name)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func writeVector(t *testing.T, keyPath, objPath, plainPath string) {
	key := mustKey(t)
	wrapped, err := key.WrapWorkFactor(vectorPassphrase, testWorkFactor)
	if err != nil {
		t.Fatal(err)
	}
	plain := vectorPlaintext()
	for path, data := range map[string][]byte{
		keyPath:   wrapped,
		objPath:   sealNamed(t, key, plain, vectorObject),
		plainPath: plain,
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
