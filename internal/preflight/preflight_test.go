package preflight_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/preflight"
	"github.com/vwstream/vwstream/internal/testenv"
)

// ignoresConditions is a store that drops If-None-Match and If-Match, as some
// S3-compatible servers do.
type ignoresConditions struct{ objstore.Store }

func (s ignoresConditions) Put(ctx context.Context, key string, r io.Reader, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	opts.IfNoneMatch, opts.IfMatch = false, ""
	return s.Store.Put(ctx, key, r, opts)
}

func TestProbe(t *testing.T) {
	local, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.NewS3(t)
	s3, err := objstore.NewS3(t.Context(), objstore.S3Options{Endpoint: env.Endpoint, Region: env.Region, Bucket: env.Bucket,
		Prefix: "vaultwarden", AccessKeyID: env.AccessKey, SecretAccessKey: env.SecretKey, ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		store objstore.Store
		ok    bool
		words []string
	}{
		{"local", local, true, []string{"conditional writes"}},
		{"s3", s3, true, []string{"conditional writes"}},
		{"ignores conditions", ignoresConditions{local}, false, []string{"If-None-Match", "second primary"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			it := preflight.Probe(t.Context(), c.store)
			if it.OK != c.ok {
				t.Fatalf("Probe OK = %v, want %v (%s)", it.OK, c.ok, it.Detail)
			}
			for _, w := range c.words {
				if !strings.Contains(it.Detail, w) {
					t.Errorf("detail %q lacks %q", it.Detail, w)
				}
			}
			for info, err := range c.store.List(t.Context(), preflight.ProbePrefix) {
				if err != nil {
					t.Fatal(err)
				}
				t.Errorf("the probe left %s behind", info.Key)
			}
		})
	}
}
