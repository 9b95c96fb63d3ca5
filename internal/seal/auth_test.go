package seal_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/testenv"
)

// ageSealTo seals plain with the stock age CLI to the recipient published in
// keys/age-recipient.txt: what anyone who can read and write the bucket can do.
func ageSealTo(t *testing.T, inner objstore.Store, plain []byte) []byte {
	t.Helper()
	rc, err := inner.Get(t.Context(), "keys/age-recipient.txt", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	recipient, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), testenv.Tool(t, "age"), "-r", strings.TrimSpace(string(recipient)))
	cmd.Stdin = bytes.NewReader(plain)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("age -r: %v\n%s", err, stderr.String())
	}
	return out.Bytes()
}

// newBucket makes a prefix as a primary of this version does: a new key, the
// upgrade step, and two genuine files.
func newBucket(t *testing.T, inner objstore.Store, pass string) (*seal.Key, map[string][]byte) {
	t.Helper()
	ctx := t.Context()
	key, err := seal.LoadOrCreateKey(ctx, inner, pass, testKeyOpts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seal.Upgrade(ctx, inner, key, pass, testKeyOpts); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"files/config.json": []byte(`{"admin_token":"genuine"}`),
		"files/rsa_key.pem": randomBytes(t, 1700),
	}
	s := seal.NewStore(inner, key)
	for name, data := range files {
		if _, err := s.Put(ctx, name, bytes.NewReader(data), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return key, files
}

// readers are the ways a restore opens the prefix: with the passphrase (the
// wrapped key carries the flag) and with the key given directly (the marker).
func readers(t *testing.T, inner objstore.Store, pass string, key *seal.Key) map[string]*seal.Store {
	t.Helper()
	byPass, err := seal.LoadKey(t.Context(), inner, pass, testKeyOpts)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := seal.ParseKey(identityOf(t, inner, pass))
	if err != nil {
		t.Fatal(err)
	}
	if err := seal.CheckKey(t.Context(), inner, direct, testKeyOpts); err != nil {
		t.Fatal(err)
	}
	return map[string]*seal.Store{"passphrase": seal.NewStore(inner, byPass), "key": seal.NewStore(inner, direct)}
}

// wantForged reads name through s and wants it refused as forged, by name,
// both whole and ranged.
func wantForged(t *testing.T, s *seal.Store, name string) {
	t.Helper()
	for _, r := range [][2]int64{{0, -1}, {1, 5}} {
		got, err := getAll(t, s, name, r[0], r[1])
		if !errors.Is(err, seal.ErrForged) || !strings.Contains(err.Error(), name) {
			t.Fatalf("read %s %v: %d bytes, %v; want ErrForged naming it", name, r, len(got), err)
		}
	}
}

// An attacker who can write the bucket seals their own config.json with the
// stock age CLI and the published recipient: every reader refuses it, by name.
func TestAuth_ForgedWithAgeCLI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, inner objstore.Store) {
		const pass = "forgery test passphrase"
		key, _ := newBucket(t, inner, pass)
		forged := ageSealTo(t, inner, []byte(`{"admin_token":"attacker"}`))
		if _, err := inner.Put(t.Context(), "files/config.json", bytes.NewReader(forged), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		for name, s := range readers(t, inner, pass, key) {
			t.Run(name, func(t *testing.T) { wantForged(t, s, "files/config.json") })
		}
	})
}

// Two genuine objects swapped (config.json <-> rsa_key.pem) are both refused.
func TestAuth_Swap(t *testing.T) {
	forEachBackend(t, func(t *testing.T, inner objstore.Store) {
		const pass = "swap test passphrase"
		key, files := newBucket(t, inner, pass)
		ctx := t.Context()
		for _, step := range [][2]string{
			{"files/config.json", "tmp"}, {"files/rsa_key.pem", "files/config.json"}, {"tmp", "files/rsa_key.pem"},
		} {
			if _, err := inner.Copy(ctx, step[0], step[1]); err != nil {
				t.Fatal(err)
			}
		}
		for name, s := range readers(t, inner, pass, key) {
			t.Run(name, func(t *testing.T) {
				for f := range files {
					wantForged(t, s, f)
				}
			})
		}
	})
}

// A prefix written by the previous format (plain age objects to the
// recipient, a wrapped key without the flag: testdata/vector-legacy plus
// objects sealed by the age CLI) restores before the upgrade; the upgrade
// re-seals every object in place, after which they still read back (and
// still open with the stock age CLI) while an object sealed the old way is
// refused, also when the marker is deleted again.
func TestUpgrade_LegacyBucket(t *testing.T) {
	forEachBackend(t, func(t *testing.T, inner objstore.Store) {
		ctx := t.Context()
		legacyDir := vectorDir + "-legacy"
		for _, name := range []string{layout.KeyPath, vectorObject} {
			data, err := os.ReadFile(filepath.Join(legacyDir, filepath.FromSlash(name)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := inner.Put(ctx, name, bytes.NewReader(data), objstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		key, err := seal.LoadKey(ctx, inner, vectorPassphrase, testKeyOpts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := inner.Put(ctx, "keys/age-recipient.txt", strings.NewReader(key.Recipient()+"\n"), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		want := map[string][]byte{vectorObject: vectorPlaintext()}
		for _, name := range []string{"files/config.json", "db/ltx/0/0000000000000001-0000000000000001.ltx", "trash/files/old.txt@1700000000"} {
			want[name] = randomBytes(t, 70_000)
			if _, err := inner.Put(ctx, name, bytes.NewReader(ageSealTo(t, inner, want[name])), objstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		readAll := func(s *seal.Store) {
			t.Helper()
			for name, plain := range want {
				if got, err := getAll(t, s, name, 0, -1); err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("read %s: %d bytes, %v", name, len(got), err)
				}
				if got, err := getAll(t, s, name, 64_000, 2_000); err != nil || !bytes.Equal(got, plain[64_000:66_000]) {
					t.Fatalf("ranged read %s: %d bytes, %v", name, len(got), err)
				}
			}
		}
		readAll(seal.NewStore(inner, key)) // before the upgrade: restores as before

		res, err := seal.Upgrade(ctx, inner, key, vectorPassphrase, testKeyOpts)
		if err != nil {
			t.Fatal(err)
		}
		if res.Checked != 4 || res.Resealed != 4 || len(res.Damaged) != 0 {
			t.Fatalf("Upgrade = %+v, want 4 checked and re-sealed", res)
		}
		if res, err := seal.Upgrade(ctx, inner, key, vectorPassphrase, testKeyOpts); err != nil || res.Checked != 0 {
			t.Fatalf("second Upgrade = %+v, %v; want nothing to do", res, err)
		}
		stores := readers(t, inner, vectorPassphrase, key)
		for _, s := range stores {
			readAll(s)
		}
		// The upgraded object still opens with the stock CLI (confidentiality recipe).
		rc, err := inner.Get(ctx, vectorObject, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		sealed, _ := io.ReadAll(rc)
		rc.Close()
		dir := t.TempDir()
		idFile, objFile, out := filepath.Join(dir, "id.txt"), filepath.Join(dir, "note.age"), filepath.Join(dir, "out")
		if err := os.WriteFile(idFile, []byte(identityOf(t, inner, vectorPassphrase)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(objFile, sealed, 0o600); err != nil {
			t.Fatal(err)
		}
		ageDecryptWithIdentity(t, idFile, objFile, out)
		if got, _ := os.ReadFile(out); !bytes.Equal(got, vectorPlaintext()) {
			t.Fatal("age CLI output of the upgraded object differs")
		}

		// Now an object sealed the old way is refused, whoever reads.
		if _, err := inner.Put(ctx, "files/config.json", bytes.NewReader(ageSealTo(t, inner, []byte("forged"))), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		for name, s := range readers(t, inner, vectorPassphrase, key) {
			t.Run(name, func(t *testing.T) { wantForged(t, s, "files/config.json") })
		}
		// Deleting the marker does not bring legacy reads back for the
		// passphrase: the flag is inside the wrapped key.
		if err := inner.Delete(ctx, "keys/objects-authenticated"); err != nil {
			t.Fatal(err)
		}
		wantForged(t, readers(t, inner, vectorPassphrase, key)["passphrase"], "files/config.json")
	})
}
