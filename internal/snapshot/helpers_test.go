package snapshot_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

const testPassphrase = "correct horse battery staple"

// newVault builds a small Vaultwarden data folder and closes its pool.
func newVault(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	v, err := vaultsim.Create(dir, vaultsim.Options{Seed: 7, Attachments: 12, AttachmentMaxSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newLocal(t *testing.T) *objstore.Local {
	t.Helper()
	l, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func encrypter(t *testing.T, o seal.SnapshotOptions) *seal.SnapshotEncrypter {
	t.Helper()
	if o.AgeWorkFactor == 0 {
		o.AgeWorkFactor = 10 // fast tests; the CLI reads any work factor up to 22
	}
	if o.GPGS2KCount == 0 {
		o.GPGS2KCount = 65536
	}
	e, err := seal.NewSnapshotEncrypter(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// takeSnapshot runs one snapshot of dir into the destinations.
func takeSnapshot(t *testing.T, dir string, o snapshot.Options, dests ...snapshot.Destination) *snapshot.Result {
	t.Helper()
	o.Source = snapshot.SourceFromFolder(dir)
	res, err := snapshot.Run(t.Context(), o, dests)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// dataFiles hashes every file of a data folder that a snapshot carries
// (everything but the database, tmp/ and icon_cache/).
func dataFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(rel, "db.sqlite3") || strings.HasPrefix(rel, "tmp/") || strings.HasPrefix(rel, "icon_cache/") ||
			rel == snapshot.ManifestName || strings.HasPrefix(rel, ".vwstream") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameFiles(t *testing.T, got, want map[string]string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("no files to compare")
	}
	for p, h := range want {
		if got[p] != h {
			t.Errorf("%s: restored hash %q, want %q", p, got[p], h)
		}
	}
	if len(got) != len(want) {
		t.Errorf("restored %d files, want %d", len(got), len(want))
	}
}

// sqliteIntegrity runs the stock sqlite3 CLI's integrity_check.
func sqliteIntegrity(t *testing.T, sqlite3, db string) {
	t.Helper()
	out, err := exec.Command(sqlite3, db, "PRAGMA integrity_check").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("sqlite3 integrity_check: %v: %s", err, out)
	}
}

// shell runs a shell pipeline and fails the test with its output.
func shell(t *testing.T, stdin string, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out.String())
	}
	return out.String()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
