// Package lease makes one primary per prefix: the primary holds an object in the
// bucket that it creates only if absent and renews only if unchanged (conditional
// writes), and it stops writing as soon as it cannot prove the lease is still its own.
//
// Timing. The holder writes expires_at = its clock + TTL at every renewal (every
// RenewInterval). Another node may take an expired lease over once its own clock is
// past expires_at + SkewMargin. The holder, measuring on its monotonic clock from
// the moment it sent its last successful write, declares the lease lost after
// TTL - RenewInterval. So between the holder fencing itself and anybody taking over
// there are at least RenewInterval + SkewMargin, which absorbs request latency and
// clock skew up to that size. The clocks of the hosts are assumed to agree to well
// within SkewMargin (NTP); a larger skew can shorten that gap, never the holder's
// own fencing, which uses no wall clock.
package lease

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
)

// Defaults, matching LEASE_TTL and LEASE_RENEW_INTERVAL.
const (
	DefaultTTL           = 30 * time.Second
	DefaultRenewInterval = 10 * time.Second
	// DefaultSkewMargin is how long past expires_at a reader waits before it takes
	// a lease over, for the clock difference between the holder and the reader.
	DefaultSkewMargin = 2 * time.Second
)

// acquireAttempts bounds the create / read / take-over loop when the lease keeps
// changing under us (several nodes starting at once).
const acquireAttempts = 5

// ErrReleased is Err after Release.
var ErrReleased = errors.New("lease released")

// ErrTaken is wrapped by Err when the lease was found held by another node
// (or deleted): someone else may be the primary now.
var ErrTaken = errors.New("lease taken")

// ErrSuspended is returned by a Guard's writes while a suspended lease waits
// for the store to confirm it.
var ErrSuspended = errors.New("lease not confirmed: the store has not answered since it expired; writes wait")

// Options configure Acquire.
type Options struct {
	Holder        Holder        // NewHolder() when zero
	TTL           time.Duration // DefaultTTL when zero
	RenewInterval time.Duration // DefaultRenewInterval when zero; must be under TTL
	// SkewMargin is added to expires_at before an expired lease is taken over;
	// DefaultSkewMargin when zero, none when negative.
	SkewMargin time.Duration
	// Force takes the lease over even when it has not expired: promote --force,
	// after a human confirmed the old primary is gone.
	Force bool
	// Suspend keeps a lease that could not be renewed in time instead of losing
	// it (LEASE_LOST_ACTION=serve): writes through a Guard wait, renewal goes
	// on, and the lease is held again as soon as a renewal finds it unchanged
	// (our ETag). Only a lease found taken or deleted is lost.
	Suspend bool
	Logger  *slog.Logger
	// Clock gives the wall time written to and compared with the lease; time.Now
	// when nil. Fencing never uses it (it runs on the monotonic clock).
	Clock func() time.Time
}

func (o Options) withDefaults() (Options, error) {
	if o.Holder == (Holder{}) {
		o.Holder = NewHolder()
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.RenewInterval == 0 {
		o.RenewInterval = DefaultRenewInterval
	}
	switch {
	case o.SkewMargin == 0:
		o.SkewMargin = DefaultSkewMargin
	case o.SkewMargin < 0:
		o.SkewMargin = 0
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.TTL <= 0 || o.RenewInterval <= 0 || o.RenewInterval >= o.TTL {
		return o, fmt.Errorf("acquire lease: renew interval %s must be positive and under the TTL %s", o.RenewInterval, o.TTL)
	}
	return o, nil
}

// Lease is a held lease, renewed in the background until Release or until it is lost.
type Lease struct {
	store objstore.Store
	opts  Options
	log   *slog.Logger

	mu         sync.Mutex
	info       Info      // as last written by us
	etag       string    // of our last write
	validUntil time.Time // monotonic: last successful write sent + TTL - RenewInterval
	suspended  bool      // past validUntil with Options.Suspend: held, but not writable
	err        error     // why the lease is no longer held; nil while held

	lost     chan struct{}
	lostOnce sync.Once
	ctx      context.Context // ends renewing
	cancel   context.CancelFunc
	done     chan struct{} // closed when the renew loop has returned
}

// Acquire takes the lease at Key: it creates it when absent, takes it over when
// expired (or when opts.Force), and otherwise fails with a *HeldError that says
// who holds it and until when. The returned Lease renews itself until Release.
func Acquire(ctx context.Context, store objstore.Store, opts Options) (*Lease, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	for range acquireAttempts {
		info := Info{Holder: opts.Holder, TTL: opts.TTL.String(), Epoch: 1, Version: FormatVersion}
		sent := stamp(&info, opts)
		oi, err := store.Put(ctx, layout.Lease, bytes.NewReader(encode(info)), objstore.PutOptions{IfNoneMatch: true, ContentType: "application/json"})
		if err == nil {
			opts.Logger.Info("lease acquired", "holder", info.Holder.String(), "expires_at", info.ExpiresAt.UTC().Format(time.RFC3339))
			return start(store, opts, info, oi.ETag, sent), nil
		}
		if !errors.Is(err, objstore.ErrPrecondition) {
			return nil, fmt.Errorf("acquire lease: %w", err)
		}

		cur, etag, err := read(ctx, store)
		if errors.Is(err, objstore.ErrNotFound) {
			continue // released between our put and our read
		}
		if err != nil {
			return nil, fmt.Errorf("acquire lease: %w", err)
		}
		if cur.Holder != opts.Holder && !opts.Force && !cur.Expired(opts.Clock(), opts.SkewMargin) {
			return nil, &HeldError{Info: cur, TTL: opts.TTL}
		}
		info.Epoch, info.AcquiredAt = cur.Epoch+1, time.Time{}
		sent = stamp(&info, opts)
		oi, err = store.Put(ctx, layout.Lease, bytes.NewReader(encode(info)), objstore.PutOptions{IfMatch: etag, ContentType: "application/json"})
		if err == nil {
			opts.Logger.Warn("lease taken over", "holder", info.Holder.String(), "previous", cur.Holder.String(),
				"previous_expires_at", cur.ExpiresAt.UTC().Format(time.RFC3339), "forced", opts.Force, "epoch", info.Epoch)
			return start(store, opts, info, oi.ETag, sent), nil
		}
		if !errors.Is(err, objstore.ErrPrecondition) && !errors.Is(err, objstore.ErrNotFound) {
			return nil, fmt.Errorf("acquire lease: take over: %w", err)
		}
		// Someone else changed it first: look again (and most likely report them).
	}
	return nil, fmt.Errorf("acquire lease: the lease changed %d times while we tried; another node is starting on this prefix", acquireAttempts)
}

// stamp sets the renewal and expiry times of info and returns the monotonic time
// the write is about to be sent, from which the holder's own validity is counted.
func stamp(info *Info, opts Options) time.Time {
	sent := time.Now()
	now := opts.Clock().UTC()
	if info.AcquiredAt.IsZero() {
		info.AcquiredAt = now
	}
	info.RenewedAt = now
	info.ExpiresAt = now.Add(opts.TTL)
	return sent
}

func start(store objstore.Store, opts Options, info Info, etag string, sent time.Time) *Lease {
	l := &Lease{
		store:      store,
		opts:       opts,
		log:        opts.Logger,
		info:       info,
		etag:       etag,
		validUntil: sent.Add(opts.TTL - opts.RenewInterval),
		lost:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	// Renewal outlives the context Acquire was given (often a start-up timeout).
	l.ctx, l.cancel = context.WithCancel(context.Background())
	go l.run()
	return l
}

// Lost is closed when the lease is no longer ours: taken over, deleted, or not
// renewed for TTL - RenewInterval. Writers must stop at once (fencing).
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Err says why the lease was lost (or ErrReleased); nil while it is held.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Held reports whether the lease is still ours.
func (l *Lease) Held() bool { return l.Err() == nil }

// Suspended reports a held lease that expired unconfirmed (Options.Suspend):
// writes through a Guard wait until a renewal confirms it.
func (l *Lease) Suspended() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err == nil && l.suspended
}

// writable is nil when the bucket may be written under this lease.
func (l *Lease) writable() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.err != nil:
		return l.err
	case l.suspended:
		return ErrSuspended
	}
	return nil
}

// Info returns the lease document as we last wrote it.
func (l *Lease) Info() Info {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info
}

// run renews the lease every RenewInterval until Release or until it is lost.
func (l *Lease) run() {
	defer close(l.done)
	next := time.NewTimer(l.opts.RenewInterval)
	defer next.Stop()
	for {
		l.mu.Lock()
		deadline, suspended := l.validUntil, l.suspended
		l.mu.Unlock()
		var fenceC <-chan time.Time // none while suspended: the lease is past it
		fence := time.NewTimer(time.Until(deadline))
		if !suspended {
			fenceC = fence.C
		}
		select {
		case <-l.ctx.Done():
			fence.Stop()
			return
		case <-fenceC:
			if !l.opts.Suspend {
				l.lose(fmt.Errorf("lease lost: not renewed for %s (LEASE_TTL - LEASE_RENEW_INTERVAL); stopping before another node may take it", l.opts.TTL-l.opts.RenewInterval))
				return
			}
			l.mu.Lock()
			l.suspended = true
			l.mu.Unlock()
			l.log.Warn("lease expired unconfirmed: writes to the bucket wait until the store answers; the application keeps serving",
				"unrenewed_for", l.opts.TTL-l.opts.RenewInterval)
			continue
		case <-next.C:
			fence.Stop()
		}
		renewBy := deadline
		if suspended {
			renewBy = time.Now().Add(l.opts.RenewInterval) // one attempt's worth
		}
		err := l.renew(renewBy)
		var taken *takenError
		switch {
		case err == nil:
			if suspended {
				l.log.Warn("lease confirmed again: writes to the bucket resume", "holder", l.opts.Holder.String())
			}
			next.Reset(l.opts.RenewInterval)
		case errors.As(err, &taken):
			l.lose(err)
			return
		case l.ctx.Err() != nil:
			return
		default:
			// Transient: try again soon; the fence above ends this if it lasts.
			retry := max(l.opts.RenewInterval/4, 50*time.Millisecond)
			l.log.Warn("lease renewal failed; retrying", "error", err, "retry_in", retry, "lost_in", time.Until(deadline).Round(time.Millisecond))
			next.Reset(retry)
		}
	}
}

// takenError is a renewal that found the lease is not ours any more.
type takenError struct{ msg string }

func (e *takenError) Error() string { return e.msg }
func (e *takenError) Unwrap() error { return ErrTaken }

// renew rewrites the lease with a later expiry, if it is still the object we wrote.
// It first compares ETags with a HEAD: a store that ignores conditional headers
// (some S3 implementations do) is then still caught within one renew interval.
func (l *Lease) renew(deadline time.Time) error {
	ctx, cancel := context.WithDeadline(l.ctx, deadline)
	defer cancel()
	l.mu.Lock()
	info, etag := l.info, l.etag
	l.mu.Unlock()

	oi, err := l.store.Stat(ctx, layout.Lease)
	if errors.Is(err, objstore.ErrNotFound) || (err == nil && oi.ETag != etag) {
		return l.taken(ctx)
	}
	if err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	sent := stamp(&info, l.opts)
	oi, err = l.store.Put(ctx, layout.Lease, bytes.NewReader(encode(info)), objstore.PutOptions{IfMatch: etag, ContentType: "application/json"})
	if errors.Is(err, objstore.ErrPrecondition) || errors.Is(err, objstore.ErrNotFound) {
		return l.taken(ctx)
	}
	if err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	l.mu.Lock()
	l.info, l.etag, l.validUntil, l.suspended = info, oi.ETag, sent.Add(l.opts.TTL-l.opts.RenewInterval), false
	l.mu.Unlock()
	l.log.Debug("lease renewed", "expires_at", info.ExpiresAt.Format(time.RFC3339Nano))
	return nil
}

// taken reads the lease after a failed condition and says who has it. A lease that
// still names us (our write landed but its reply was lost) is adopted, not lost.
func (l *Lease) taken(ctx context.Context) error {
	cur, etag, err := read(ctx, l.store)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return &takenError{"lease lost: the lease object was deleted behind our back"}
	case errors.Is(err, errUnreadable):
		return &takenError{"lease lost: the lease object was replaced by something unreadable"}
	case err != nil:
		// Whatever happened, our ETag is gone: the lease changed hands or was rewritten.
		return &takenError{fmt.Sprintf("lease lost: it changed behind our back (%v)", err)}
	case cur.Holder == l.opts.Holder:
		l.mu.Lock()
		l.info, l.etag = cur, etag
		l.mu.Unlock()
		return fmt.Errorf("renew lease: our lease changed version; adopted it")
	}
	return &takenError{fmt.Sprintf("lease lost: taken over by %s at %s (epoch %d)",
		cur.Holder, cur.AcquiredAt.UTC().Format(time.RFC3339), cur.Epoch)}
}

func (l *Lease) lose(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
	if !errors.Is(err, ErrReleased) {
		l.log.Error("lease lost", "error", err)
		l.lostOnce.Do(func() { close(l.lost) })
	}
}

// Release stops renewing and deletes the lease if it is still ours, so a successor
// need not wait for it to expire. S3 has no conditional delete, so "still ours" is
// a HEAD comparing ETags followed by a DELETE. The gap between the two is bounded
// by running both under a deadline of the lease's own validity (TTL - RenewInterval
// after our last renewal): until then nobody can take the lease over, so the DELETE
// cannot remove a successor's lease unless it reaches the server more than
// RenewInterval + SkewMargin late. Past that point the lease is left to expire.
// Release does not close Lost.
func (l *Lease) Release(ctx context.Context) error {
	l.cancel()
	<-l.done
	l.mu.Lock()
	held, etag, deadline := l.err == nil, l.etag, l.validUntil
	if held {
		l.err = ErrReleased
	}
	l.mu.Unlock()
	if !held {
		return nil // lost already: not ours to delete
	}
	if time.Until(deadline) <= 0 {
		l.log.Warn("lease not deleted: too close to its expiry to delete safely; it will expire", "expires_at", l.Info().ExpiresAt.Format(time.RFC3339))
		return nil
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	oi, err := l.store.Stat(ctx, layout.Lease)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	if oi.ETag != etag {
		l.log.Warn("lease not deleted: it changed hands")
		return nil
	}
	if err := l.store.Delete(ctx, layout.Lease); err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	l.log.Info("lease released")
	return nil
}
