package drill_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"github.com/vwstream/vwstream/internal/drill"
	"github.com/vwstream/vwstream/internal/objstore"
)

// A drill whose restore would not fit in the temp folder's free space does not
// start: ErrNoSpace, nothing written to the temp folder.
func TestRun_RefusesWithoutSpace(t *testing.T) {
	store, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for key, size := range map[string]int{"db/0009/0000000000000001-0000000000000004.ltx": 4 << 20, "files/attachments/a/b": 1 << 20} {
		if _, err := store.Put(t.Context(), key, bytes.NewReader(make([]byte, size)), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tmp := t.TempDir()
	var asked string
	res, err := drill.Run(t.Context(), drill.Options{Data: store, DBName: "db.sqlite3", TempDir: tmp,
		Files:     func(context.Context, string) (int, error) { return 0, nil },
		FreeSpace: func(path string) (int64, error) { asked = path; return 5 << 20, nil }})
	if !errors.Is(err, drill.ErrNoSpace) || res.OK {
		t.Fatalf("Run = %+v, %v; want ErrNoSpace", res, err)
	}
	if asked != tmp {
		t.Errorf("free space asked of %q, want the temp folder %q", asked, tmp)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("a refused drill wrote %d entries to the temp folder", len(entries))
	}
}
