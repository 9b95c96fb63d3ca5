package dbrepl

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/superfly/ltx"
)

// encodeLTX writes pages under hdr with the ltx encoder.
func encodeLTX(t *testing.T, hdr ltx.Header, pages [][]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	enc, err := ltx.NewEncoder(&out)
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.EncodeHeader(hdr); err != nil {
		t.Fatal(err)
	}
	for i, p := range pages {
		if err := enc.EncodePage(ltx.PageHeader{Pgno: uint32(i + 1)}, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// The seed's new header is written in place with a checksum derived from the
// old one: the file must be byte for byte what the encoder writes under the
// new header, and pass the decoder's checks.
func TestReheader_MatchesTheEncoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const pageSize = 4096
	for _, n := range []int{1, 3, 700} {
		pages := make([][]byte, n)
		for i := range pages {
			pages[i] = make([]byte, pageSize)
			for j := range pageSize / 2 { // half random, half zeros
				pages[i][j] = byte(rng.Uint32())
			}
		}
		old := ltx.Header{Version: ltx.Version, PageSize: pageSize, Commit: uint32(n), MinTXID: 1, MaxTXID: 1,
			Timestamp: 1700000000000, WALOffset: 32, WALSize: 4120 * int64(n), WALSalt1: 11, WALSalt2: 22, Flags: ltx.HeaderFlagNoChecksum}
		seeded := old
		seeded.Timestamp, seeded.WALOffset, seeded.WALSize = 1700000123456, 32, 4120
		seeded.WALSalt1, seeded.WALSalt2 = rng.Uint32(), rng.Uint32()
		seeded.NodeID = 7

		path := filepath.Join(t.TempDir(), "seed.ltx")
		if err := os.WriteFile(path, encodeLTX(t, old, pages), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := reheader(f, seeded, n); err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if want := encodeLTX(t, seeded, pages); !bytes.Equal(got, want) {
			t.Fatalf("%d pages: reheadered file differs from the encoder's (len %d vs %d)", n, len(got), len(want))
		}
		if err := ltx.NewDecoder(bytes.NewReader(got)).Verify(); err != nil {
			t.Fatalf("%d pages: %v", n, err)
		}
	}
}

// The seed trusts the restore's copy of the file only as long as it is byte
// for byte the stream the restore's decoder checked: a copy changed on disk
// afterwards is refused before anything is written beside the database.
func TestSeedLatest_RefusesACopyThatDiffersFromTheCheckedStream(t *testing.T) {
	const pageSize = 4096
	pages := [][]byte{bytes.Repeat([]byte{1}, pageSize), bytes.Repeat([]byte{2}, pageSize)}
	hdr := ltx.Header{Version: ltx.Version, PageSize: pageSize, Commit: 2, MinTXID: 5, MaxTXID: 5,
		Timestamp: 1700000000000, WALOffset: 32, WALSize: 2 * 4120, WALSalt1: 1, WALSalt2: 2, Flags: ltx.HeaderFlagNoChecksum}
	raw := encodeLTX(t, hdr, pages)
	kept := &keptFile{minTXID: 5, maxTXID: 5, done: true, sum: sha256.Sum256(raw), pages: 2, sized: true}

	dir := t.TempDir()
	out := filepath.Join(dir, "db.sqlite3")
	path := filepath.Join(dir, "seed.ltx")
	raw[len(raw)/2] ^= 0x40 // one bit flipped in the middle of the pages
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	err := seedLatest(out, path, nil, kept)
	if err == nil || !strings.Contains(err.Error(), "differs from the stream") {
		t.Fatalf("seed of a changed copy: %v, want the copy refused", err)
	}
	for _, p := range []string{out + "-wal", filepath.Join(metaDir(out), "ltx", "0")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists after a refused seed (%v)", p, err)
		}
	}
}
