package objstore_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/objstore/storetest"
)

func newLocal(t *testing.T) *objstore.Local {
	t.Helper()
	s, err := objstore.NewLocal(filepath.Join(t.TempDir(), "backup"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLocal_Conformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Target {
		return storetest.Target{Store: newLocal(t)}
	})
}

func TestLocal_String(t *testing.T) {
	s := newLocal(t)
	if got, want := s.String(), "file://"+filepath.ToSlash(s.Root()); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestLocal_List_SkipsTempAndLock(t *testing.T) {
	s := newLocal(t)
	ctx := t.Context()
	if _, err := s.Put(ctx, "db/a", strings.NewReader("a"), objstore.PutOptions{IfMatch: "x"}); err == nil {
		t.Fatal("IfMatch on missing key succeeded")
	}
	if _, err := s.Put(ctx, "db/b", strings.NewReader("b"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// A crash mid-put leaves a temp file behind; it must stay invisible.
	if err := os.WriteFile(filepath.Join(s.Root(), "db", ".tmp-123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []string
	for info, err := range s.List(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, info.Key)
	}
	if strings.Join(got, " ") != "db/b" {
		t.Errorf("list = %q, want [db/b]", got)
	}
}

func TestLocal_Delete_RemovesEmptyDirs(t *testing.T) {
	s := newLocal(t)
	ctx := t.Context()
	if _, err := s.Put(ctx, "files/attachments/c/a", strings.NewReader("a"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "files/attachments/c/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "files")); !os.IsNotExist(err) {
		t.Errorf("empty parent dirs remain: %v", err)
	}
	if _, err := os.Stat(s.Root()); err != nil {
		t.Errorf("root removed: %v", err)
	}
}

func TestLocal_Put_RefusesEscapingKeys(t *testing.T) {
	s := newLocal(t)
	for _, k := range []string{"../escape", "a/../../escape", "/etc/passwd", `..\escape`, ".tmp-x", "a/.tmp-y", ".lock"} {
		_, err := s.Put(t.Context(), k, strings.NewReader("x"), objstore.PutOptions{})
		if err == nil || !strings.Contains(err.Error(), "invalid key") {
			t.Errorf("put %q = %v, want an invalid key error", k, err)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(s.Root()), "escape")); !os.IsNotExist(err) {
		t.Error("a key escaped the root")
	}
}
