package snapshot_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/vault"
)

func gpgSnapshot(t *testing.T, dir string, store objstore.Store) *snapshot.Result {
	t.Helper()
	return takeSnapshot(t, dir, snapshot.Options{
		Encrypter: encrypter(t, seal.SnapshotOptions{Mode: seal.SnapshotGPGPassphrase, GPGPassphrase: testPassphrase}),
	}, snapshot.Destination{Name: "target", Store: store, Verify: true})
}

// Restore into a new folder reproduces the data folder; into a non-empty one it
// refuses without Force and replaces it with Force, leaving no old copy behind.
func TestRestore_Roundtrip(t *testing.T) {
	dir := newVault(t)
	store := newLocal(t)
	res := gpgSnapshot(t, dir, store)
	keys := seal.SnapshotKeys{GPGPassphrase: testPassphrase}

	to := filepath.Join(t.TempDir(), "data")
	got, err := snapshot.Restore(t.Context(), snapshot.RestoreOptions{Store: store, Name: "latest", To: to, Keys: keys})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got.Name != res.Name || got.Integrity != "ok" || got.Tables["ciphers"] == 0 {
		t.Fatalf("restore result %+v, want %s with integrity ok and ciphers", got, res.Name)
	}
	sameFiles(t, dataFiles(t, to), dataFiles(t, dir))

	// Non-empty target: refused without Force, untouched.
	marker := filepath.Join(to, "marker")
	if err := os.WriteFile(marker, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.Restore(t.Context(), snapshot.RestoreOptions{Store: store, Name: res.Name, To: to, Keys: keys}); err == nil {
		t.Fatal("Restore over a non-empty folder without Force succeeded")
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("refused restore touched the folder: %v", err)
	}
	// With Force, by name without suffix.
	base := strings.TrimSuffix(res.Name, snapshot.Ext(res.Name))
	if _, err := snapshot.Restore(t.Context(), snapshot.RestoreOptions{Store: store, Name: base, To: to, Force: true, Keys: keys}); err != nil {
		t.Fatalf("Restore --force: %v", err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("marker after forced restore: %v, want gone", err)
	}
	sameFiles(t, dataFiles(t, to), dataFiles(t, dir))
	// In place, as a mount point needs: the folder stays, its contents are
	// replaced, and the volume's node id stays with it.
	if err := os.WriteFile(marker, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	nodeID := filepath.Join(to, vault.NodeIDFile)
	if err := os.WriteFile(nodeID, []byte("0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.Restore(t.Context(), snapshot.RestoreOptions{Store: store, Name: res.Name, To: to, Force: true, Keys: keys}); err != nil {
		t.Fatalf("Restore in place: %v", err)
	}
	after, err := os.Stat(to)
	if err != nil || !os.SameFile(before, after) {
		t.Fatalf("in-place restore replaced the folder itself (%v)", err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("marker after in-place restore: %v, want gone", err)
	}
	if b, err := os.ReadFile(nodeID); err != nil || string(b) != "0123456789abcdef\n" {
		t.Fatalf("node id after a forced restore: %q, %v; want it kept", b, err)
	}
	if err := os.Remove(nodeID); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dataFiles(t, to), dataFiles(t, dir))
	if hidden, _ := filepath.Glob(filepath.Join(to, ".vwstream-*")); len(hidden) != 0 {
		t.Fatalf("in-place restore left %v", hidden)
	}
	left, _ := filepath.Glob(to + ".old-*")
	tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(to), ".vwstream-restore-*"))
	if len(left)+len(tmps) != 0 {
		t.Fatalf("left behind: %v %v", left, tmps)
	}
}

// Every bad input fails with one readable line and leaves the target untouched.
func TestRestore_BadInput(t *testing.T) {
	dir := newVault(t)
	store := newLocal(t)
	res := gpgSnapshot(t, dir, store)
	archive := filepath.Join(store.Root(), "snapshots", res.Name)
	good, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	put := func(name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(store.Root(), "snapshots", name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tampered := bytes.Clone(good)
	tampered[len(tampered)/2] ^= 0x40
	put("vaultwarden-20200101-000001.tar.gz.gpg", good[:len(good)*2/3])
	put("vaultwarden-20200101-000002.tar.gz.gpg", tampered)
	put("vaultwarden-20200101-000003.tar", evilTar(t, &tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Size: 1, Mode: 0o600}))
	put("vaultwarden-20200101-000004.tar", evilTar(t, &tar.Header{Name: "attachments", Typeflag: tar.TypeSymlink, Linkname: "/etc", Mode: 0o777}))
	put("vaultwarden-20200101-000005.tar", evilTar(t, &tar.Header{Name: "/abs", Typeflag: tar.TypeReg, Size: 1, Mode: 0o600}))
	put("vaultwarden-20200101-000006.tar", evilTar(t, &tar.Header{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o600}))

	cases := []struct {
		name, snap string
		pass       string
		want       error
	}{
		{"wrong passphrase", res.Name, "not the passphrase", seal.ErrSnapshotKey},
		{"truncated", "vaultwarden-20200101-000001.tar.gz.gpg", testPassphrase, snapshot.ErrDamaged},
		{"tampered", "vaultwarden-20200101-000002.tar.gz.gpg", testPassphrase, snapshot.ErrDamaged},
		{"dotdot entry", "vaultwarden-20200101-000003.tar", "", snapshot.ErrUnsafe},
		{"escaping symlink", "vaultwarden-20200101-000004.tar", "", snapshot.ErrUnsafe},
		{"absolute entry", "vaultwarden-20200101-000005.tar", "", snapshot.ErrUnsafe},
		{"fifo", "vaultwarden-20200101-000006.tar", "", snapshot.ErrUnsafe},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			to := filepath.Join(parent, "data")
			if err := os.MkdirAll(to, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(to, "keep"), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := snapshot.Restore(t.Context(), snapshot.RestoreOptions{Store: store, Name: tc.snap, To: to, Force: true,
				Keys: seal.SnapshotKeys{GPGPassphrase: tc.pass}})
			if err == nil {
				t.Fatal("Restore succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %q, want %v", err, tc.want)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("error spans lines: %q", err)
			}
			if strings.Contains(err.Error(), testPassphrase) {
				t.Errorf("error shows the passphrase: %q", err)
			}
			entries, _ := os.ReadDir(parent)
			if len(entries) != 1 || entries[0].Name() != "data" {
				t.Errorf("restore left %v next to the target", entries)
			}
			if b, err := os.ReadFile(filepath.Join(to, "keep")); err != nil || string(b) != "x" {
				t.Errorf("target changed: %v", err)
			}
			if _, err := os.Stat(filepath.Join(parent, "escape")); err == nil {
				t.Error("an entry escaped the restore folder")
			}
		})
	}
}

// evilTar is an archive whose first entry is hdr, then a plausible database entry.
func evilTar(t *testing.T, hdr *tar.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	if hdr.Size > 0 {
		tw.Write(bytes.Repeat([]byte("x"), int(hdr.Size)))
	}
	tw.WriteHeader(&tar.Header{Name: "db.sqlite3", Typeflag: tar.TypeReg, Size: 3, Mode: 0o600})
	tw.Write([]byte("abc"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A decompression bomb (a small archive that unpacks to far more than its
// sidecar declares) is refused as soon as it passes that size, not at the
// end, and leaves the target as it was.
func TestRestore_DecompressionBombStopsEarly(t *testing.T) {
	store := newLocal(t)
	const name = "vaultwarden-20200101-000003.tar.gz"
	var archive bytes.Buffer
	zw := gzip.NewWriter(&archive)
	tw := tar.NewWriter(zw)
	const bomb = 256 << 20
	if err := tw.WriteHeader(&tar.Header{Name: snapshot.DBEntry, Mode: 0o600, Size: bomb, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(tw, zeros{}, bomb); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(store.Root(), "snapshots")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), archive.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	sidecar := fmt.Sprintf(`{"name":%q,"size":%d,"expanded_bytes":4096}`, name, archive.Len())
	if err := os.WriteFile(filepath.Join(dir, name+snapshot.SidecarExt), []byte(sidecar), 0o600); err != nil {
		t.Fatal(err)
	}

	to := filepath.Join(t.TempDir(), "restored")
	_, err := snapshot.Restore(t.Context(), snapshot.RestoreOptions{Store: store, Name: name, To: to})
	if !errors.Is(err, snapshot.ErrTooLarge) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("restore of a %d-byte archive unpacking to %d bytes = %v, want ErrTooLarge on one line", archive.Len(), bomb, err)
	}
	if names, _ := vault.Entries(to); len(names) != 0 {
		t.Fatalf("the refused restore left %v in the target", names)
	}
	if left, _ := filepath.Glob(filepath.Join(to, ".vwstream-*")); len(left) != 0 {
		t.Fatalf("the refused restore left %v", left)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
