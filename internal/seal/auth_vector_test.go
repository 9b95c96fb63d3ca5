package seal

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/curve25519"
)

// The authentication values of the test vector (testdata/vector), as
// docs/FORMAT.md lists them, so that another implementation can check its
// derivation step by step.
const (
	vectorSecret    = "64c45dcd1799d96d3af575422b699ed9c9124d1f83964173dde91fdd839891ed"
	vectorAuthKey   = "b259babf83dd0f102b452c79259a4eb2de1370ff2d9162f3f714743bcc50bf2d"
	vectorFileKey   = "cc3c4a7dd8784c06d1756398e75c4e73"
	vectorEphemeral = "eb15e0b7ac2ee6666dce2060fedc85cc2b3ae1ce629f8facba3a8eac7eb7992e"
	vectorShare     = "LCfJUX+1sr3VrOr6G16OrbkUdY76z2gfsfPtM6gBEj4"
	vectorMarker    = "vwstream objects authenticated fcb4c7869e7f8aa0f2a3d0b74c4c550674a55347d5387b5f445d5daa211c5fb2"
)

func TestAuthVector(t *testing.T) {
	wrapped, err := os.ReadFile("testdata/vector/keys/age-identity.age")
	if err != nil {
		t.Fatal(err)
	}
	k, err := Unwrap(wrapped, "vwstream test vector")
	if err != nil {
		t.Fatal(err)
	}
	if !k.authenticated {
		t.Fatal("the vector's wrapped key lacks the authentication flag")
	}
	sealed, err := os.ReadFile("testdata/vector/files/note.txt")
	if err != nil {
		t.Fatal(err)
	}
	fileKey, err := age.DecryptHeader(sealed[:HeaderSize], k.identity)
	if err != nil {
		t.Fatal(err)
	}
	ak, err := k.authKey()
	if err != nil {
		t.Fatal(err)
	}
	eph, err := k.ephemeral("files/note.txt", fileKey)
	if err != nil {
		t.Fatal(err)
	}
	share, err := curve25519.X25519(eph, curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	marker, err := k.markerContent()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := k.secret()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{
		"identity secret": hex.EncodeToString(secret),
		"auth key":        hex.EncodeToString(ak),
		"file key":        hex.EncodeToString(fileKey),
		"ephemeral":       hex.EncodeToString(eph),
		"share":           b64(share),
		"marker content":  strings.TrimSpace(string(marker)),
	}
	want := map[string]string{
		"identity secret": vectorSecret, "auth key": vectorAuthKey, "file key": vectorFileKey, "ephemeral": vectorEphemeral,
		"share": vectorShare, "marker content": vectorMarker,
	}
	doc, err := os.ReadFile("../../docs/FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, g := range got {
		if g != want[name] {
			t.Errorf("%s = %s, want %s", name, g, want[name])
		}
		if !strings.Contains(string(doc), g) {
			t.Errorf("docs/FORMAT.md does not list the vector's %s %s", name, g)
		}
	}
	if !strings.Contains(string(sealed[:HeaderSize]), "-> X25519 "+vectorShare+"\n") {
		t.Error("the vector object's stanza does not carry the derived share")
	}
}
