package vault_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vwstream/vwstream/internal/vault"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

func TestMissingAttachments(t *testing.T) {
	v, err := vaultsim.Create(t.TempDir(), vaultsim.Options{Seed: 2, Size: "small"})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	db, dir := filepath.Join(v.Dir, vaultsim.DBName), filepath.Join(v.Dir, vaultsim.AttachmentsDir)
	if missing, err := vault.MissingAttachments(db, dir); err != nil || len(missing) != 0 {
		t.Fatalf("fresh vault: %v, %v", missing, err)
	}
	var files []string
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) < 2 {
		t.Fatalf("the fixture has %d attachment files", len(files))
	}
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(files[1], 1); err != nil {
		t.Fatal(err)
	}
	missing, err := vault.MissingAttachments(db, dir)
	if err != nil || len(missing) != 2 {
		t.Fatalf("after removing one file and truncating another: %+v, %v", missing, err)
	}
	got := map[string]int64{}
	for _, m := range missing {
		got[m.Path] = m.GotSize
	}
	if got[files[0]] != -1 || got[files[1]] != 1 {
		t.Fatalf("reported %v", got)
	}
	if _, err := vault.MissingAttachments(filepath.Join(v.Dir, "nope.sqlite3"), dir); err == nil {
		t.Fatal("a missing database is not an error")
	}
}
