package lease

import (
	"context"
	"errors"
	"time"

	"github.com/vwstream/vwstream/internal/objstore"
)

// Wait acquires the lease like Acquire, but while another node holds it, it waits
// for that lease to expire and tries again, until ctx ends (promote without
// --force). A holder that keeps renewing keeps Wait waiting. onHeld, if not nil,
// is told each time the lease is found held, for progress messages.
func Wait(ctx context.Context, store objstore.Store, opts Options, onHeld func(*HeldError)) (*Lease, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	opts.Holder = o.Holder // the same holder on every attempt
	for {
		l, err := Acquire(ctx, store, opts)
		var held *HeldError
		if !errors.As(err, &held) {
			return l, err
		}
		if onHeld != nil {
			onHeld(held)
		}
		// Look again just after it would expire, or after a renew interval if
		// sooner, so a renewal that moved expires_at is noticed.
		wait := min(held.Info.ExpiresAt.Add(o.SkewMargin).Sub(o.Clock()), o.RenewInterval)
		t := time.NewTimer(max(wait, 50*time.Millisecond) + 10*time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err // the HeldError says who still holds it
		case <-t.C:
		}
	}
}
