package dbrepl

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/superfly/ltx"
)

// reencode rewrites an LTX file with valid file checksums, checksum tracking
// on and the given post-apply checksum, as a writer with a bug could.
func reencode(t *testing.T, b []byte, postApply ltx.Checksum) []byte {
	t.Helper()
	dec := ltx.NewDecoder(bytes.NewReader(b))
	if err := dec.DecodeHeader(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	enc, err := ltx.NewEncoder(&out)
	if err != nil {
		t.Fatal(err)
	}
	hdr := dec.Header()
	hdr.Flags &^= ltx.HeaderFlagNoChecksum
	if !hdr.IsSnapshot() {
		hdr.PreApplyChecksum = ltx.ChecksumFlag | 1 // required; nothing in a restore reads it
	}
	if err := enc.EncodeHeader(hdr); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, dec.Header().PageSize)
	for {
		var ph ltx.PageHeader
		if err := dec.DecodePage(&ph, data); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if err := enc.EncodePage(ph, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := dec.Close(); err != nil {
		t.Fatal(err)
	}
	enc.SetPostApplyChecksum(postApply)
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// A plan whose files are each intact but whose pages do not add up to the
// database state the last file records is refused, as litestream's own
// restore refuses it.
func TestRestore_PostApplyChecksumMismatch(t *testing.T) {
	store, _ := replicateBatches(t, 3)
	keys := store.keys("db/0000/")
	last := keys[len(keys)-1]

	// The state after the last file, as litestream's checksum records it.
	out := filepath.Join(t.TempDir(), "db.sqlite3")
	if _, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ltx.ChecksumReader(f, 4096)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	orig := slices.Clone(store.objs[last].data)

	// With the right checksum the plan restores: the rewrite is faithful.
	store.mutate(last, func([]byte) []byte { return reencode(t, orig, want) })
	out = filepath.Join(t.TempDir(), "db.sqlite3")
	if _, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out}); err != nil {
		t.Fatalf("restore of a faithfully re-encoded replica: %v", err)
	}
	if got, want := itemIDs(t, out), seq(0, 300); !slices.Equal(got, want) {
		t.Fatalf("restored %d rows, want %d", len(got), len(want))
	}

	store.mutate(last, func([]byte) []byte { return reencode(t, orig, want^0x1234) })
	out = filepath.Join(t.TempDir(), "db.sqlite3")
	_, err = Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out})
	if err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("restore with a wrong post-apply checksum: %v, want a checksum error", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("refused restore left a database behind")
	}
}
