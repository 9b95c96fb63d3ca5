package objstore

import (
	"context"
	"math/rand/v2"
	"time"
)

// Retry defaults: five attempts spaced by exponential backoff with full jitter,
// so a short outage (a restarting server, a throttling burst) is ridden out in
// a few seconds while a dead endpoint is reported quickly.
const (
	DefaultRetryAttempts = 5
	DefaultRetryBase     = 200 * time.Millisecond
	DefaultRetryCap      = 5 * time.Second
)

// retrier runs an operation again while it fails with a transient error.
type retrier struct {
	attempts  int
	base, cap time.Duration
	// transient reports whether err is worth another attempt.
	transient func(err error) bool
	// onRetry is told about each failed attempt that will be retried.
	onRetry func(attempt int, wait time.Duration, err error)
}

// do calls fn until it succeeds, fails permanently, attempts run out or ctx ends.
// It returns fn's last error.
func (r retrier) do(ctx context.Context, fn func(ctx context.Context) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		if err = fn(ctx); err == nil || attempt >= r.attempts || !r.transient(err) || ctx.Err() != nil {
			return err
		}
		wait := r.backoff(attempt)
		if r.onRetry != nil {
			r.onRetry(attempt, wait, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// backoff is the "full jitter" delay before attempt+1: uniform in
// [0, min(cap, base*2^(attempt-1))), which spreads out clients that failed together.
func (r retrier) backoff(attempt int) time.Duration {
	d := r.cap
	if attempt-1 < 30 {
		if e := r.base << (attempt - 1); e > 0 && e < r.cap {
			d = e
		}
	}
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}
