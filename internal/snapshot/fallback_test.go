package snapshot

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
)

// The fallback folder's bound drops the oldest archives first and never the
// newest, even when the newest alone is over the bound.
func TestFallback_BoundDropsOldestKeepsNewest(t *testing.T) {
	ctx := context.Background()
	store, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, size := range []int{300, 300, 300, 500} {
		name := o.Namer.Base(base.Add(time.Duration(i)*time.Hour)) + ".tar.gz.gpg"
		names = append(names, name)
		if _, err := store.Put(ctx, layout.Snapshots+name, bytes.NewReader(make([]byte, size)), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := putSidecar(ctx, store, Info{Name: name, Time: base, Size: int64(size), Sidecar: true}); err != nil {
			t.Fatal(err)
		}
	}
	kept := func() []string {
		infos, err := List(ctx, store, o.Namer)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, in := range infos {
			out = append(out, in.Name)
		}
		return out
	}
	o.Fallback = &Fallback{Store: store, MaxBytes: 1100}
	o.boundFallback(ctx, names[3])
	if got := kept(); len(got) != 3 || got[0] != names[3] || got[2] != names[1] {
		t.Fatalf("after a bound of 1100 bytes: %v; want the newest three", got)
	}
	o.Fallback.MaxBytes = 100
	o.boundFallback(ctx, names[3])
	if got := kept(); len(got) != 1 || got[0] != names[3] {
		t.Fatalf("after a bound of 100 bytes: %v; want only the newest", got)
	}
}
