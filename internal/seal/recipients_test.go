package seal_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/testenv"
)

// AGE_PUBLIC_KEYS takes SSH public keys as the age CLI does: a snapshot sealed
// to an ssh-ed25519 key (made by ssh-keygen) opens with `age -d -i` and the
// private key.
func TestSnapshot_SSHRecipient(t *testing.T) {
	dir := t.TempDir()
	priv := filepath.Join(dir, "id_ed25519")
	if out, err := exec.CommandContext(t.Context(), testenv.Tool(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "vw", "-f", priv).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(priv + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{strings.TrimSpace(string(pub)), id.Recipient().String()}
	if err := seal.CheckAgeRecipients(keys); err != nil {
		t.Fatalf("CheckAgeRecipients: %v", err)
	}
	enc, err := seal.NewSnapshotEncrypter(seal.SnapshotOptions{Mode: seal.SnapshotAgePublicKey, AgeRecipients: keys})
	if err != nil {
		t.Fatal(err)
	}
	var sealed bytes.Buffer
	w, err := enc.Encrypt(&sealed)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("snapshot archive bytes")
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	in, out := filepath.Join(dir, "snap.age"), filepath.Join(dir, "snap")
	if err := os.WriteFile(in, sealed.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	ageDecryptWithIdentity(t, priv, in, out)
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("age -d -i ssh key: %q, %v", got, err)
	}
}

func TestCheckAgeRecipients_Refuses(t *testing.T) {
	for _, keys := range [][]string{
		nil,
		{"age1xyz"},
		{"ssh-ed25519 AAAA"},
		{"ssh-rsa notbase64"},
		{"AGE-SECRET-KEY-1QQQQ"}, // an identity pasted where a recipient belongs
	} {
		err := seal.CheckAgeRecipients(keys)
		if err == nil {
			t.Errorf("%q accepted", keys)
			continue
		}
		for _, k := range keys {
			if strings.Contains(err.Error(), k) {
				t.Errorf("error %q quotes the key", err)
			}
		}
	}
}
