package filesync_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/filesync"
	"github.com/vwstream/vwstream/internal/objstore/storetest"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/vault"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// Files and database restored together: every file comes back (through the
// sealed view), attachment rows all have their files, and a syncer started on
// the restored folder uploads nothing (Restore wrote the manifest).
func TestRestore_RoundTrip_Sealed(t *testing.T) {
	key, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	store := seal.NewStore(newLocal(t), key)
	src := newVault(t, vaultsim.Options{Seed: 30})
	start := time.Now()
	s := open(t, fastOptions(src, store))
	waitIdle(t, s, start)

	dst := filepath.Join(t.TempDir(), "data")
	// The database comes from db/ (another package); copy it here.
	db, err := os.ReadFile(filepath.Join(src, vaultsim.DBName))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dst, vaultsim.DBName), db)
	res, err := filesync.Restore(t.Context(), filesync.RestoreOptions{Store: store, DataDir: dst, Includes: includesOf(dst)})
	if err != nil {
		t.Fatal(err)
	}
	want := syncedFiles(t, src)
	if res.Files != len(want) {
		t.Fatalf("restored %d files, want %d", res.Files, len(want))
	}
	sameContents(t, syncedFiles(t, dst), want)
	missing, err := vault.MissingAttachments(filepath.Join(dst, vaultsim.DBName), filepath.Join(dst, "attachments"))
	if err != nil || len(missing) != 0 {
		t.Fatalf("MissingAttachments = %v, %v; want none", missing, err)
	}
	os.Remove(filepath.Join(dst, "attachments", firstAttachment(t, dst)))
	if missing, err := vault.MissingAttachments(filepath.Join(dst, vaultsim.DBName), filepath.Join(dst, "attachments")); err != nil || len(missing) != 1 || missing[0].GotSize != -1 {
		t.Fatalf("after removing one file, MissingAttachments = %+v, %v; want it reported", missing, err)
	}
	writeFile(t, filepath.Join(dst, "attachments", firstAttachment(t, src)), want["files/attachments/"+filepath.ToSlash(firstAttachment(t, src))])
	// The rewritten file has a new mtime, same content: still no upload.

	counting := storetest.NewCounting(store)
	start = time.Now()
	s2 := open(t, fastOptions(dst, counting))
	st := waitIdle(t, s2, start)
	if n := counting.Take(); st.FilesUploaded != 0 || n["put"] != 0 {
		t.Fatalf("syncer on the restored folder uploaded %d files, want none", st.FilesUploaded)
	}
}

func firstAttachment(t testing.TB, dir string) string {
	t.Helper()
	var rel string
	_ = filepath.Walk(filepath.Join(dir, "attachments"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && rel == "" {
			rel, _ = filepath.Rel(filepath.Join(dir, "attachments"), p)
		}
		return nil
	})
	if rel == "" {
		t.Fatal("no attachment")
	}
	return rel
}
