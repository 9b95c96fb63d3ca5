package seal_test

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"
	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/seal"
)

// testWorkFactor keeps scrypt fast in tests; production wraps use DefaultWorkFactor.
const testWorkFactor = 10

var testKeyOpts = seal.KeyOptions{WorkFactor: testWorkFactor}

func TestKey_WrapUnwrap(t *testing.T) {
	k := mustKey(t)
	wrapped, err := k.WrapWorkFactor("correct horse", testWorkFactor)
	if err != nil {
		t.Fatal(err)
	}
	got, err := seal.Unwrap(wrapped, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if got.Recipient() != k.Recipient() {
		t.Fatalf("unwrapped recipient %s, want %s", got.Recipient(), k.Recipient())
	}
	// The unwrapped key opens what the original sealed.
	if plain, err := openBytes(got, sealBytes(t, k, []byte("hello"))); err != nil || string(plain) != "hello" {
		t.Fatalf("open with unwrapped key = %q, %v", plain, err)
	}
}

// Wrap uses age's default work factor; lower ones are for tests only.
func TestKey_Wrap_WorkFactor(t *testing.T) {
	t.Parallel() // a real scrypt at 2^18: let it overlap the other tests
	wrapped, err := mustKey(t).Wrap("pw")
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := age.ExtractHeader(bytes.NewReader(wrapped))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(hdr), "\n")
	fields := strings.Fields(lines[1])
	if len(fields) != 4 || fields[1] != "scrypt" || fields[3] != "18" {
		t.Fatalf("stanza = %q, want an scrypt stanza with work factor 18", lines[1])
	}
	if seal.DefaultWorkFactor < 18 {
		t.Fatalf("DefaultWorkFactor = %d, want at least 18", seal.DefaultWorkFactor)
	}
}

func TestUnwrap_WrongPassphrase(t *testing.T) {
	wrapped, err := mustKey(t).WrapWorkFactor("right-passphrase-1234", testWorkFactor)
	if err != nil {
		t.Fatal(err)
	}
	_, err = seal.Unwrap(wrapped, "wrong-passphrase-5678")
	if !errors.Is(err, seal.ErrWrongPassphrase) {
		t.Fatalf("error = %v, want ErrWrongPassphrase", err)
	}
	for _, secret := range []string{"right-passphrase-1234", "wrong-passphrase-5678"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error %q contains a passphrase", err)
		}
	}
	// Through the store the message names the key object.
	store := newMemStore()
	if _, err := store.Put(t.Context(), layout.KeyPath, bytes.NewReader(wrapped), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = seal.LoadKey(t.Context(), store, "wrong-passphrase-5678", testKeyOpts)
	if !errors.Is(err, seal.ErrWrongPassphrase) || !strings.Contains(err.Error(), layout.KeyPath) || strings.Contains(err.Error(), "wrong-passphrase-5678") {
		t.Fatalf("LoadKey error = %v, want ErrWrongPassphrase naming %s without the passphrase", err, layout.KeyPath)
	}
}

func TestUnwrap_NotWrapped(t *testing.T) {
	k := mustKey(t)
	for name, data := range map[string][]byte{
		"garbage":       []byte("hello"),
		"sealed object": sealBytes(t, k, []byte("AGE-SECRET-KEY-1")),
	} {
		if _, err := seal.Unwrap(data, "pw"); err == nil || errors.Is(err, seal.ErrWrongPassphrase) {
			t.Errorf("%s: error = %v, want a format error", name, err)
		}
	}
	if _, err := k.WrapWorkFactor("", testWorkFactor); err == nil {
		t.Error("Wrap with an empty passphrase succeeded")
	}
}

func TestLoadKey_Missing(t *testing.T) {
	_, err := seal.LoadKey(t.Context(), newMemStore(), "pw", testKeyOpts)
	if !errors.Is(err, seal.ErrNoKey) {
		t.Fatalf("error = %v, want ErrNoKey", err)
	}
	if want := "no bucket key at keys/age-identity.age; the data under db/ and files/ cannot be decrypted without it"; err.Error() != want {
		t.Fatalf("error = %q, want %q", err, want)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store objstore.Store) {
		ctx := t.Context()
		k1, err := seal.LoadOrCreateKey(ctx, store, "pw", testKeyOpts)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := seal.LoadOrCreateKey(ctx, store, "pw", testKeyOpts)
		if err != nil {
			t.Fatal(err)
		}
		if k1.Recipient() != k2.Recipient() {
			t.Fatal("second LoadOrCreateKey made a new key")
		}
		if _, err := store.Stat(ctx, layout.KeyPath); err != nil {
			t.Fatalf("key object: %v", err)
		}
	})
}

// Nodes racing to create the key all end up with the one that was stored.
func TestLoadOrCreateKey_Race(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store objstore.Store) {
		const nodes = 4
		keys := make([]*seal.Key, nodes)
		errs := make([]error, nodes)
		var wg sync.WaitGroup
		for i := range nodes {
			wg.Go(func() { keys[i], errs[i] = seal.CreateKey(t.Context(), store, "pw", testKeyOpts) })
		}
		wg.Wait()
		stored, err := seal.LoadKey(t.Context(), store, "pw", testKeyOpts)
		if err != nil {
			t.Fatal(err)
		}
		for i := range nodes {
			if errs[i] != nil {
				t.Fatalf("node %d: %v", i, errs[i])
			}
			if keys[i].Recipient() != stored.Recipient() {
				t.Fatalf("node %d got %s, the stored key is %s", i, keys[i].Recipient(), stored.Recipient())
			}
		}
	})
}

// With sealed data and no key, a new key would open nothing: refuse.
func TestLoadOrCreateKey_DataWithoutKey(t *testing.T) {
	for _, prefix := range []string{"db/", "files/"} {
		store := newMemStore()
		if _, err := store.Put(t.Context(), prefix+"x", bytes.NewReader([]byte("sealed")), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := seal.LoadOrCreateKey(t.Context(), store, "pw", testKeyOpts)
		if !errors.Is(err, seal.ErrNoKey) {
			t.Fatalf("%s: error = %v, want ErrNoKey", prefix, err)
		}
		if _, err := store.Stat(t.Context(), layout.KeyPath); !errors.Is(err, objstore.ErrNotFound) {
			t.Fatalf("%s: a key was created: %v", prefix, err)
		}
	}
}

func TestChangePassphrase(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store objstore.Store) {
		ctx := t.Context()
		k, err := seal.CreateKey(ctx, store, "old", testKeyOpts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := seal.ChangePassphrase(ctx, store, "not-it", "new", testKeyOpts); !errors.Is(err, seal.ErrWrongPassphrase) {
			t.Fatalf("change with a wrong passphrase: error = %v, want ErrWrongPassphrase", err)
		}
		if _, err := seal.ChangePassphrase(ctx, store, "old", "new", testKeyOpts); err != nil {
			t.Fatal(err)
		}
		if _, err := seal.LoadKey(ctx, store, "old", testKeyOpts); !errors.Is(err, seal.ErrWrongPassphrase) {
			t.Fatalf("old passphrase after change: error = %v, want ErrWrongPassphrase", err)
		}
		got, err := seal.LoadKey(ctx, store, "new", testKeyOpts)
		if err != nil {
			t.Fatal(err)
		}
		if got.Recipient() != k.Recipient() {
			t.Fatal("changing the passphrase changed the key: existing data would be lost")
		}
	})
}
