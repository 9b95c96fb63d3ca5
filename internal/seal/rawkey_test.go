package seal_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/seal"
)

const recipientPath = "keys/age-recipient.txt"

// identityOf opens the wrapped bucket key as the docs tell a user to (age -d
// with the passphrase) and returns the identity line.
func identityOf(t *testing.T, store objstore.Store, passphrase string) string {
	t.Helper()
	raw, err := getAll(t, store, layout.KeyPath, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	text := ageDecryptPassphrase(t, raw, passphrase)
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "AGE-SECRET-KEY-1") {
			return line
		}
	}
	t.Fatalf("no identity in the unwrapped key:\n%s", text)
	return ""
}

func TestCheckKey(t *testing.T) {
	ctx := context.Background()
	const pass = "raw key test passphrase"
	store := newMemStore()
	created, err := seal.CreateKey(ctx, store, pass, seal.KeyOptions{WorkFactor: 10})
	if err != nil {
		t.Fatal(err)
	}
	// The public recipient is stored beside the wrapped key, in the clear.
	if b, err := getAll(t, store, recipientPath, 0, -1); err != nil || strings.TrimSpace(string(b)) != created.Recipient() {
		t.Fatalf("%s = %q, %v; want %s", recipientPath, b, err, created.Recipient())
	}
	identity := identityOf(t, store, pass)
	key, err := seal.ParseKey(identity)
	if err != nil {
		t.Fatal(err)
	}
	if key.Recipient() != created.Recipient() {
		t.Fatalf("parsed key %s, created %s", key.Recipient(), created.Recipient())
	}
	other := mustKey(t)

	// Against the recipient file.
	if err := seal.CheckKey(ctx, store, key, seal.KeyOptions{}); err != nil {
		t.Fatalf("the bucket's own key: %v", err)
	}
	err = seal.CheckKey(ctx, store, other, seal.KeyOptions{})
	if !errors.Is(err, seal.ErrWrongKey) || !strings.Contains(err.Error(), created.Recipient()) || !strings.Contains(err.Error(), other.Recipient()) {
		t.Fatalf("another key: %v; want ErrWrongKey naming both public keys", err)
	}

	// A prefix from before the recipient file: one sealed object decides.
	if err := store.Delete(ctx, recipientPath); err != nil {
		t.Fatal(err)
	}
	if err := seal.CheckKey(ctx, store, key, seal.KeyOptions{}); !errors.Is(err, seal.ErrNoKey) {
		t.Fatalf("nothing to check against: %v; want ErrNoKey", err)
	}
	if _, err := seal.NewStore(store, created).Put(ctx, "files/config.json", strings.NewReader("{}"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := seal.CheckKey(ctx, store, key, seal.KeyOptions{}); err != nil {
		t.Fatalf("the bucket's own key against a sealed object: %v", err)
	}
	if err := seal.CheckKey(ctx, store, other, seal.KeyOptions{}); !errors.Is(err, seal.ErrWrongKey) || !strings.Contains(err.Error(), "files/config.json") {
		t.Fatalf("another key against a sealed object: %v; want ErrWrongKey naming the object", err)
	}

	// The primary's load puts the recipient file back for the next direct use.
	if _, err := seal.LoadOrCreateKey(ctx, store, pass, seal.KeyOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, err := getAll(t, store, recipientPath, 0, -1); err != nil || strings.TrimSpace(string(b)) != created.Recipient() {
		t.Fatalf("after LoadOrCreateKey %s = %q, %v", recipientPath, b, err)
	}
}

func TestParseKey_NeverQuotesTheValue(t *testing.T) {
	for _, s := range []string{"", "AGE-SECRET-KEY-1NOTAKEY", "age1qqqqqqqq", "hunter2-passphrase"} {
		_, err := seal.ParseKey(s)
		if err == nil {
			t.Fatalf("ParseKey(%q) accepted", s)
		}
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("error quotes the value: %v", err)
		}
	}
}

// A key made with age-keygen and given with the passphrase becomes the bucket
// key of a new prefix, wrapped so that the passphrase alone opens it later.
func TestAdoptKey(t *testing.T) {
	ctx := context.Background()
	const pass = "adopt key test passphrase"
	opts := seal.KeyOptions{WorkFactor: 10}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	key, err := seal.ParseKey(id.String())
	if err != nil {
		t.Fatal(err)
	}
	store := newMemStore()
	if err := seal.AdoptKey(ctx, store, key, pass, opts); err != nil {
		t.Fatal(err)
	}
	if got := identityOf(t, store, pass); got != id.String() {
		t.Fatal("the wrapped key is not the key given")
	}
	if err := seal.CheckKey(ctx, store, key, opts); err != nil {
		t.Fatalf("CheckKey after AdoptKey: %v", err)
	}
	// Adopting again is a check; another key loses to the stored one.
	if err := seal.AdoptKey(ctx, store, key, pass, opts); err != nil {
		t.Fatalf("adopting the stored key again: %v", err)
	}
	if err := seal.AdoptKey(ctx, store, mustKey(t), pass, opts); !errors.Is(err, seal.ErrWrongKey) {
		t.Fatalf("adopting another key: %v; want ErrWrongKey", err)
	}

	// Sealed data without a key: nothing proves the key opens it.
	orphan := newMemStore()
	if _, err := seal.NewStore(orphan, mustKey(t)).Put(ctx, "db/0000/x.ltx", strings.NewReader("x"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := seal.AdoptKey(ctx, orphan, key, pass, opts); !errors.Is(err, seal.ErrNoKey) {
		t.Fatalf("adopting over sealed data: %v; want ErrNoKey", err)
	}
	if _, err := orphan.Stat(ctx, layout.KeyPath); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("a refused adoption stored a key: %v", err)
	}
}
