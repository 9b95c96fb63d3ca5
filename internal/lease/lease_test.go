package lease

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/testenv"
)

// Short timings keep the suite fast; the ratios match the defaults (TTL/RI = 4 > 2).
const (
	testTTL   = 2 * time.Second
	testRenew = 500 * time.Millisecond
)

// forEachStore runs fn against a local folder and against the S3 test server.
func forEachStore(t *testing.T, fn func(t *testing.T, store objstore.Store)) {
	t.Run("local", func(t *testing.T) {
		t.Parallel()
		s, err := objstore.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		fn(t, s)
	})
	t.Run("s3", func(t *testing.T) {
		t.Parallel()
		env := testenv.NewS3(t)
		s, err := objstore.NewS3(t.Context(), objstore.S3Options{
			Endpoint: env.Endpoint, Region: env.Region, Bucket: env.Bucket, Prefix: "vaultwarden",
			AccessKeyID: env.AccessKey, SecretAccessKey: env.SecretKey, ForcePathStyle: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		fn(t, s)
	})
}

func testOptions(name string) Options {
	return Options{
		Holder:        Holder{Host: name, PID: 100, Node: name + "-node"},
		TTL:           testTTL,
		RenewInterval: testRenew,
		SkewMargin:    100 * time.Millisecond,
	}
}

func mustAcquire(t *testing.T, store objstore.Store, opts Options) *Lease {
	t.Helper()
	l, err := Acquire(t.Context(), store, opts)
	if err != nil {
		t.Fatalf("acquire as %s: %v", opts.Holder.Host, err)
	}
	t.Cleanup(func() { _ = l.Release(context.Background()) })
	return l
}

// crash stops renewing without deleting the lease, like a killed process.
func crash(l *Lease) {
	l.cancel()
	<-l.done
}

func TestAcquire_RefusesHeldLease(t *testing.T) {
	forEachStore(t, func(t *testing.T, store objstore.Store) {
		a := mustAcquire(t, store, testOptions("host-a"))
		_, err := Acquire(t.Context(), store, testOptions("host-b"))
		var held *HeldError
		if !errors.As(err, &held) {
			t.Fatalf("second acquire: %v; want a *HeldError", err)
		}
		msg := err.Error()
		until := held.Info.ExpiresAt.UTC().Format(time.RFC3339)
		for _, want := range []string{"lease held by host-a (pid 100, node host-a-node) until " + until, "another primary is running", "LEASE_TTL=2s"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q does not contain %q", msg, want)
			}
		}
		if strings.ContainsAny(msg, "\n") {
			t.Errorf("message is not one line: %q", msg)
		}
		if got, want := held.Info.Holder, a.Info().Holder; got != want {
			t.Errorf("held by %v; want %v", got, want)
		}
		if !a.Held() {
			t.Fatalf("first lease no longer held: %v", a.Err())
		}
	})
}

func TestAcquire_TakesOverExpiredLease(t *testing.T) {
	forEachStore(t, func(t *testing.T, store objstore.Store) {
		a := mustAcquire(t, store, testOptions("host-a"))
		crash(a)
		expires := a.Info().ExpiresAt

		// Before expiry + margin by b's clock: refused.
		b := testOptions("host-b")
		b.Clock = func() time.Time { return expires.Add(50 * time.Millisecond) }
		if _, err := Acquire(t.Context(), store, b); !errors.As(err, new(*HeldError)) {
			t.Fatalf("acquire within the skew margin: %v; want *HeldError", err)
		}
		// After: taken over, with the epoch counting holders.
		b.Clock = func() time.Time { return time.Now().Add(testTTL + time.Second) }
		lb := mustAcquire(t, store, b)
		cur, err := Peek(t.Context(), store)
		if err != nil {
			t.Fatal(err)
		}
		if cur == nil || cur.Holder != b.Holder || cur.Epoch != a.Info().Epoch+1 {
			t.Fatalf("after takeover the lease is %+v; want holder %v epoch %d", cur, b.Holder, a.Info().Epoch+1)
		}
		if !lb.Held() {
			t.Fatal(lb.Err())
		}
	})
}

func TestAcquire_RaceHasOneWinner(t *testing.T) {
	forEachStore(t, func(t *testing.T, store objstore.Store) {
		race := func(t *testing.T, round string, clock func() time.Time) *Lease {
			t.Helper()
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				winners []*Lease
				held    atomic.Int32
			)
			for i := range 8 {
				wg.Go(func() {
					opts := testOptions(fmt.Sprintf("%s-racer-%d", round, i))
					opts.Clock = clock
					l, err := Acquire(t.Context(), store, opts)
					var he *HeldError
					switch {
					case err == nil:
						mu.Lock()
						winners = append(winners, l)
						mu.Unlock()
					case errors.As(err, &he):
						held.Add(1)
					default:
						t.Errorf("racer %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			for _, l := range winners {
				t.Cleanup(func() { _ = l.Release(context.Background()) })
			}
			if len(winners) != 1 || held.Load() != 7 {
				t.Fatalf("%d winners and %d refused; want 1 and 7", len(winners), held.Load())
			}
			return winners[0]
		}
		// On an empty prefix (create-if-absent) ...
		first := race(t, "create", nil)
		crash(first)
		// ... and on an expired lease (take-over if-match).
		later := func() time.Time { return time.Now().Add(testTTL + time.Second) }
		second := race(t, "takeover", later)
		if second.Info().Holder == first.Info().Holder {
			t.Fatal("the expired holder won again")
		}
	})
}

func TestLease_LostWhenStolen(t *testing.T) {
	forEachStore(t, func(t *testing.T, store objstore.Store) {
		a := mustAcquire(t, store, testOptions("host-a"))
		thief := Info{Holder: Holder{Host: "thief", PID: 1, Node: "beef"}, ExpiresAt: time.Now().Add(time.Hour), Epoch: 9, Version: 1}
		stolen := time.Now()
		if _, err := store.Put(t.Context(), layout.Lease, bytes.NewReader(encode(thief)), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-a.Lost():
		case <-time.After(testRenew + 500*time.Millisecond):
			t.Fatalf("Lost not closed %s after the lease was stolen", time.Since(stolen))
		}
		t.Logf("lost %s after the theft (renew interval %s)", time.Since(stolen).Round(time.Millisecond), testRenew)
		if err := a.Err(); err == nil || !strings.Contains(err.Error(), "taken over by thief") {
			t.Fatalf("Err() = %v; want it to name the thief", err)
		}
		// Release must not delete the thief's lease.
		if err := a.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
		cur, err := Peek(t.Context(), store)
		if err != nil || cur == nil || cur.Holder != thief.Holder {
			t.Fatalf("after release the lease is %+v (%v); want the thief's", cur, err)
		}
	})
}

func TestLease_ReleaseKeepsSuccessorsLease(t *testing.T) {
	forEachStore(t, func(t *testing.T, store objstore.Store) {
		a := mustAcquire(t, store, testOptions("host-a"))
		// a stalls (stops renewing without knowing); b is promoted by force.
		a.cancel()
		<-a.done
		bo := testOptions("host-b")
		bo.Force = true
		mustAcquire(t, store, bo)
		if err := a.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
		cur, err := Peek(t.Context(), store)
		if err != nil || cur == nil || cur.Holder != bo.Holder {
			t.Fatalf("after a's release the lease is %+v (%v); want b's", cur, err)
		}
	})
}

func TestLease_ReleaseDeletesOwnLease(t *testing.T) {
	forEachStore(t, func(t *testing.T, store objstore.Store) {
		a := mustAcquire(t, store, testOptions("host-a"))
		time.Sleep(testRenew + 200*time.Millisecond) // at least one renewal
		if got := a.Info(); !got.RenewedAt.After(got.AcquiredAt) {
			t.Fatalf("lease not renewed: %+v", got)
		}
		if err := a.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
		if cur, err := Peek(t.Context(), store); err != nil || cur != nil {
			t.Fatalf("after release Peek = %+v, %v; want no lease", cur, err)
		}
		if a.Held() {
			t.Fatal("Held after Release")
		}
		select {
		case <-a.Lost():
			t.Fatal("Release closed Lost")
		default:
		}
		// A successor does not wait for expiry.
		mustAcquire(t, store, testOptions("host-b"))
	})
}

var errPartition = errors.New("network is unreachable")

func TestLease_LostWhenNotRenewed(t *testing.T) {
	local, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := &partitioned{Store: local}
	a := mustAcquire(t, store, testOptions("host-a"))
	time.Sleep(testRenew + 100*time.Millisecond)
	store.broken.Store(true)
	cut := time.Now()
	select {
	case <-a.Lost():
	case <-time.After(testTTL):
		t.Fatalf("Lost not closed %s after the store became unreachable", time.Since(cut))
	}
	t.Logf("fenced %s after the partition, %s before expires_at", time.Since(cut).Round(time.Millisecond), time.Until(a.Info().ExpiresAt).Round(time.Millisecond))
	// Fenced before the lease expires for anybody else.
	if now := time.Now(); !now.Before(a.Info().ExpiresAt) {
		t.Fatalf("fenced at %s, after the lease's expiry %s", now, a.Info().ExpiresAt)
	}
	if err := a.Err(); err == nil || !strings.Contains(err.Error(), "not renewed") {
		t.Fatalf("Err() = %v", err)
	}
}

// partitioned fails Stat and Put once broken.
type partitioned struct {
	objstore.Store
	broken atomic.Bool
}

func (p *partitioned) Stat(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	if p.broken.Load() {
		return objstore.ObjectInfo{}, errPartition
	}
	return p.Store.Stat(ctx, key)
}

func TestPeek_NoLease(t *testing.T) {
	s, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if cur, err := Peek(t.Context(), s); cur != nil || err != nil {
		t.Fatalf("Peek on an empty store = %+v, %v", cur, err)
	}
	if _, err := s.Put(t.Context(), layout.Lease, strings.NewReader("not json"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(t.Context(), s, testOptions("host-a"))
	if err == nil || !strings.Contains(err.Error(), "delete the object") {
		t.Fatalf("acquire over garbage: %v; want a refusal that says what to do", err)
	}
}

func TestWait_AcquiresAfterExpiry(t *testing.T) {
	store, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := mustAcquire(t, store, testOptions("host-a"))
	crash(a)
	expires := a.Info().ExpiresAt
	var waits int
	b, err := Wait(t.Context(), store, testOptions("host-b"), func(*HeldError) { waits++ })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Release(context.Background()) })
	if now := time.Now(); now.Before(expires) || waits == 0 {
		t.Fatalf("acquired at %s after %d waits; the crashed lease expired at %s", now, waits, expires)
	}

	// A live holder keeps Wait waiting until its context ends, with the holder named.
	ctx, cancel := context.WithTimeout(t.Context(), testTTL+500*time.Millisecond)
	defer cancel()
	_, err = Wait(ctx, store, testOptions("host-c"), nil)
	var held *HeldError
	if !errors.As(err, &held) || held.Info.Holder.Host != "host-b" {
		t.Fatalf("Wait against a live holder: %v; want a *HeldError naming host-b", err)
	}
}

// With Suspend, a lease not renewed in time is suspended, not lost: writes
// through its Guard wait, and a renewal that finds the lease unchanged makes
// them pass again. A lease found taken while suspended is lost, and the
// Guard refuses writes for good.
func TestLease_SuspendThenConfirmOrLose(t *testing.T) {
	local, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := &partitioned{Store: local}
	opts := testOptions("host-a")
	opts.Suspend = true
	a := mustAcquire(t, store, opts)
	g := NewGuard(local)
	g.Bind(a)
	put := func() error {
		_, err := g.Put(t.Context(), "db/x", strings.NewReader("x"), objstore.PutOptions{})
		return err
	}
	if err := put(); err != nil {
		t.Fatalf("write under a held lease: %v", err)
	}

	store.broken.Store(true)
	time.Sleep(testTTL + testRenew)
	if !a.Suspended() || !a.Held() {
		t.Fatalf("after %s unrenewed: suspended %t, held %t; want both", testTTL+testRenew, a.Suspended(), a.Held())
	}
	select {
	case <-a.Lost():
		t.Fatal("a suspended lease closed Lost")
	default:
	}
	if err := put(); !errors.Is(err, ErrSuspended) {
		t.Fatalf("write under a suspended lease = %v, want ErrSuspended", err)
	}

	store.broken.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for a.Suspended() {
		if time.Now().After(deadline) {
			t.Fatal("lease not confirmed within 5 s of the store's return")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := put(); err != nil {
		t.Fatalf("write after the lease was confirmed: %v", err)
	}

	// Suspended again, and meanwhile another node takes it over.
	store.broken.Store(true)
	time.Sleep(testTTL + testRenew)
	thief := testOptions("host-b")
	thief.Force = true
	mustAcquire(t, local, thief)
	store.broken.Store(false)
	select {
	case <-a.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("a lease taken during the suspension was not lost")
	}
	if err := put(); !errors.Is(err, ErrTaken) {
		t.Fatalf("write after the lease was taken = %v, want ErrTaken", err)
	}
}
