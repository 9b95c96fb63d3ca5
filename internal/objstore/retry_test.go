package objstore

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRetrier_Do(t *testing.T) {
	transient := errors.New("transient")
	permanent := errors.New("permanent")
	r := retrier{attempts: 5, base: time.Millisecond, cap: 4 * time.Millisecond,
		transient: func(err error) bool { return errors.Is(err, transient) }}

	calls := 0
	err := r.do(t.Context(), func(context.Context) error {
		if calls++; calls < 3 {
			return transient
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("two transient failures: err=%v calls=%d, want nil after 3", err, calls)
	}

	calls = 0
	err = r.do(t.Context(), func(context.Context) error { calls++; return permanent })
	if !errors.Is(err, permanent) || calls != 1 {
		t.Errorf("permanent failure: err=%v calls=%d, want 1 call", err, calls)
	}

	calls = 0
	err = r.do(t.Context(), func(context.Context) error { calls++; return transient })
	if !errors.Is(err, transient) || calls != 5 {
		t.Errorf("endless transient failure: err=%v calls=%d, want 5 calls", err, calls)
	}

	ctx, cancel := context.WithCancel(t.Context())
	calls = 0
	slow := retrier{attempts: 5, base: time.Hour, cap: time.Hour, transient: r.transient}
	err = slow.do(ctx, func(context.Context) error { calls++; cancel(); return transient })
	if !errors.Is(err, transient) || calls != 1 {
		t.Errorf("cancelled during backoff: err=%v calls=%d, want 1 call", err, calls)
	}
}

func TestRetrier_Backoff(t *testing.T) {
	r := retrier{base: 200 * time.Millisecond, cap: 5 * time.Second}
	for attempt := 1; attempt <= 40; attempt++ {
		limit := min(r.cap, r.base<<min(attempt-1, 20))
		for range 50 {
			if d := r.backoff(attempt); d < 0 || d >= limit {
				t.Fatalf("backoff(%d) = %v, want in [0, %v)", attempt, d, limit)
			}
		}
	}
}

func TestNewS3_RegionAndPathStyle(t *testing.T) {
	for _, tc := range []struct {
		opts      S3Options
		region    string
		pathStyle bool
	}{
		{S3Options{}, "us-east-1", false},
		{S3Options{Region: "eu-west-3"}, "eu-west-3", false},
		{S3Options{Region: "auto", Endpoint: "https://s3.eu-central-1.amazonaws.com", Provider: "AWS"}, "eu-central-1", false},
		{S3Options{Endpoint: "https://acct.r2.cloudflarestorage.com", Provider: "Cloudflare"}, "auto", true},
		{S3Options{Endpoint: "http://minio:9000", Provider: "Minio"}, "us-east-1", true},
		{S3Options{Endpoint: "https://s3.us-west-004.backblazeb2.com", Provider: "Backblaze"}, "us-west-004", true},
		{S3Options{Endpoint: "https://s3.eu-central-2.wasabisys.com", Provider: "Wasabi"}, "eu-central-2", true},
		{S3Options{Endpoint: "https://oss.example", Provider: "Alibaba"}, "us-east-1", false},
		{S3Options{Provider: "AWS", ForcePathStyle: true}, "us-east-1", true},
	} {
		tc.opts.Bucket = "b"
		s, err := NewS3(t.Context(), tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		o := s.client.Options()
		if o.Region != tc.region || o.UsePathStyle != tc.pathStyle {
			t.Errorf("%+v: region %q path style %v, want %q %v", tc.opts, o.Region, o.UsePathStyle, tc.region, tc.pathStyle)
		}
	}
}

func TestNewS3_Invalid(t *testing.T) {
	for _, opts := range []S3Options{
		{},
		{Bucket: "b", Endpoint: "minio:9000"},
		{Bucket: "b", PartSize: 1 << 20},
	} {
		if _, err := NewS3(t.Context(), opts); err == nil {
			t.Errorf("NewS3(%+v) succeeded", opts)
		}
	}
}
