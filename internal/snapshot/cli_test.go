package snapshot_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/testenv"
)

// A user with stock gpg and tar gets the data folder back from a passphrase
// snapshot, and gpg reports AES-256.
func TestRun_GPGPassphraseStockTools(t *testing.T) {
	gpg := testenv.Tool(t, "gpg")
	sqlite3 := testenv.Tool(t, "sqlite3")
	testenv.Tool(t, "tar")
	dir := newVault(t)
	store := newLocal(t)
	res := takeSnapshot(t, dir, snapshot.Options{
		Encrypter: encrypter(t, seal.SnapshotOptions{Mode: seal.SnapshotGPGPassphrase, GPGPassphrase: testPassphrase}),
	}, snapshot.Destination{Name: "target", Store: store, Verify: true})
	if !strings.HasSuffix(res.Name, ".tar.gz.gpg") {
		t.Fatalf("name %q, want the .tar.gz.gpg suffix", res.Name)
	}
	if got, want := res.Destinations[0].Verified, snapshot.VerifiedArchive; got != want {
		t.Fatalf("verified %q, want %q", got, want)
	}
	archive := filepath.Join(store.Root(), "snapshots", res.Name)
	home := t.TempDir()
	out := t.TempDir()
	shell(t, "", "GNUPGHOME="+home+" "+gpg+" --batch --pinentry-mode loopback --passphrase "+shellQuote(testPassphrase)+
		" -d "+shellQuote(archive)+" | tar -xz -C "+shellQuote(out))
	sqliteIntegrity(t, sqlite3, filepath.Join(out, "db.sqlite3"))
	sameFiles(t, dataFiles(t, out), dataFiles(t, dir))
	if _, err := os.Stat(filepath.Join(out, snapshot.ManifestName)); err != nil {
		t.Fatalf("manifest: %v", err)
	}

	packets := shell(t, "", "GNUPGHOME="+home+" "+gpg+" --batch --pinentry-mode loopback --passphrase "+shellQuote(testPassphrase)+
		" --list-packets "+shellQuote(archive)+" 2>&1 >/dev/null; GNUPGHOME="+home+" "+gpg+" --batch --pinentry-mode loopback --passphrase "+
		shellQuote(testPassphrase)+" --list-packets "+shellQuote(archive)+" 2>/dev/null | head -5")
	if !strings.Contains(packets, "cipher 9") && !strings.Contains(packets, "algo 9") && !strings.Contains(packets, "sym alg: 9") {
		t.Fatalf("gpg --list-packets shows no AES-256 (algo 9):\n%s", packets)
	}

	// The -latest copy and the sidecar sit beside the archive.
	for _, name := range []string{"vaultwarden-latest.tar.gz.gpg", res.Name + ".json"} {
		if _, err := os.Stat(filepath.Join(store.Root(), "snapshots", name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// age -d with the passphrase (typed at a terminal) reads an age-passphrase snapshot.
func TestRun_AgePassphraseStockTools(t *testing.T) {
	age := testenv.Tool(t, "age")
	script := testenv.Tool(t, "script")
	sqlite3 := testenv.Tool(t, "sqlite3")
	dir := newVault(t)
	store := newLocal(t)
	res := takeSnapshot(t, dir, snapshot.Options{
		Compression: snapshot.CompressZstd,
		Encrypter:   encrypter(t, seal.SnapshotOptions{Mode: seal.SnapshotAgePassphrase, AgePassphrase: testPassphrase}),
	}, snapshot.Destination{Name: "target", Store: store, Verify: true})
	if !strings.HasSuffix(res.Name, ".tar.zst.age") {
		t.Fatalf("name %q, want the .tar.zst.age suffix", res.Name)
	}
	work := t.TempDir()
	tarFile := filepath.Join(work, "snap.tar.zst")
	cmdline := strings.Join([]string{shellQuote(age), "-d", "-o", shellQuote(tarFile), shellQuote(filepath.Join(store.Root(), "snapshots", res.Name))}, " ")
	shell(t, testPassphrase+"\n", shellQuote(script)+" -qec "+shellQuote(cmdline)+" /dev/null")
	out := t.TempDir()
	shell(t, "", "tar --zstd -xf "+shellQuote(tarFile)+" -C "+shellQuote(out)+" 2>/dev/null || zstd -dc "+shellQuote(tarFile)+" | tar -x -C "+shellQuote(out))
	sqliteIntegrity(t, sqlite3, filepath.Join(out, "db.sqlite3"))
	sameFiles(t, dataFiles(t, out), dataFiles(t, dir))
}

// age -d -i identity reads a snapshot encrypted to age recipients; the run
// verifies it by checksum, having no identity itself.
func TestRun_AgeRecipientsStockTools(t *testing.T) {
	age := testenv.Tool(t, "age")
	ageKeygen := testenv.Tool(t, "age-keygen")
	sqlite3 := testenv.Tool(t, "sqlite3")
	work := t.TempDir()
	idFile := filepath.Join(work, "id.txt")
	shell(t, "", shellQuote(ageKeygen)+" -o "+shellQuote(idFile)+" 2>/dev/null")
	recipient := strings.TrimSpace(shell(t, "", shellQuote(ageKeygen)+" -y "+shellQuote(idFile)))
	dir := newVault(t)
	store := newLocal(t)
	res := takeSnapshot(t, dir, snapshot.Options{
		Encrypter: encrypter(t, seal.SnapshotOptions{Mode: seal.SnapshotAgePublicKey, AgeRecipients: []string{recipient}}),
	}, snapshot.Destination{Name: "target", Store: store, Verify: true})
	if got, want := res.Destinations[0].Verified, snapshot.VerifiedChecksum; got != want {
		t.Fatalf("verified %q, want %q", got, want)
	}
	out := t.TempDir()
	shell(t, "", shellQuote(age)+" -d -i "+shellQuote(idFile)+" "+shellQuote(filepath.Join(store.Root(), "snapshots", res.Name))+
		" | tar -xz -C "+shellQuote(out))
	sqliteIntegrity(t, sqlite3, filepath.Join(out, "db.sqlite3"))
	sameFiles(t, dataFiles(t, out), dataFiles(t, dir))

	// Restore with the identity works too.
	id, err := os.ReadFile(idFile)
	if err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(t.TempDir(), "restored")
	if _, err := snapshot.Restore(t.Context(), snapshot.RestoreOptions{Store: store, Name: "latest", To: to,
		Keys: seal.SnapshotKeys{AgeIdentities: string(id)}}); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	sameFiles(t, dataFiles(t, to), dataFiles(t, dir))
}

// gpg -d with the private key reads a snapshot encrypted to GPG_PUBLIC_KEY_RING.
func TestRun_GPGPublicKeyStockTools(t *testing.T) {
	gpg := testenv.Tool(t, "gpg")
	home := t.TempDir()
	g := "GNUPGHOME=" + shellQuote(home) + " " + shellQuote(gpg) + " --batch --pinentry-mode loopback --passphrase '' "
	shell(t, "", g+"--quick-gen-key 'vwstream test <test@example.org>' rsa2048 encrypt never 2>/dev/null")
	pub := shell(t, "", g+"--armor --export test@example.org")
	dir := newVault(t)
	store := newLocal(t)
	res := takeSnapshot(t, dir, snapshot.Options{
		Encrypter: encrypter(t, seal.SnapshotOptions{Mode: seal.SnapshotGPGPublicKey, GPGPublicKeyRing: pub}),
	}, snapshot.Destination{Name: "target", Store: store, Verify: true})
	out := t.TempDir()
	shell(t, "", g+"-d "+shellQuote(filepath.Join(store.Root(), "snapshots", res.Name))+" 2>/dev/null | tar -xz -C "+shellQuote(out))
	sameFiles(t, dataFiles(t, out), dataFiles(t, dir))
	packets := shell(t, "", g+"-v --list-packets "+shellQuote(filepath.Join(store.Root(), "snapshots", res.Name))+" 2>&1")
	if !strings.Contains(packets, "AES256") {
		t.Fatalf("gpg -v --list-packets shows no AES-256:\n%s", packets)
	}
}
