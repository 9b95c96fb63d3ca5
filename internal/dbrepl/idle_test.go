package dbrepl

import (
	"context"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"

	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/objstore/storetest"
	"github.com/vwstream/vwstream/internal/testenv"
)

// TestReplicator_IdleRequestsVersusStock measures the requests an idle
// replicator makes with vwstream's settings and with litestream's stock ones,
// side by side. Opt-in: VWSTREAM_DBREPL_IDLE_SECONDS=60 (the hour figure is
// extrapolated from that window).
func TestReplicator_IdleRequestsVersusStock(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("VWSTREAM_DBREPL_IDLE_SECONDS"))
	if secs <= 0 {
		t.Skip("set VWSTREAM_DBREPL_IDLE_SECONDS to measure idle requests")
	}
	window := time.Duration(secs) * time.Second
	configs := map[string]Options{
		"vwstream": {},
		"stock":    {L0RetentionCheckInterval: litestream.DefaultL0RetentionCheckInterval},
	}
	var wg sync.WaitGroup
	results := map[string]map[string]int{}
	var mu sync.Mutex
	for name, opt := range configs {
		wg.Go(func() {
			store := storetest.NewCounting(newMemStore())
			path := tempDB(t)
			db := openTestDB(t, path)
			opt.DBPath, opt.Store = path, store
			r, err := New(opt)
			if err != nil {
				t.Error(err)
				return
			}
			if err := r.Start(context.Background()); err != nil {
				t.Error(err)
				return
			}
			defer r.Close(context.Background())
			// Write for a while, then wait out litestream's one-off work after
			// writes stop (L1 compaction at the next 30 s boundary, the 1 min
			// time-based checkpoint and its LTX file) before counting.
			for i := range 10 {
				insertBatch(t, db, i*10, (i+1)*10)
				time.Sleep(time.Second)
			}
			time.Sleep(90 * time.Second)
			before := store.Counts()
			time.Sleep(window)
			after := store.Counts()
			for k, v := range before {
				after[k] -= v
			}
			mu.Lock()
			results[name] = after
			mu.Unlock()
		})
	}
	wg.Wait()
	for name, ops := range results {
		total := 0
		for _, v := range ops {
			total += v
		}
		t.Logf("%s: %d requests in %v idle (%v), ~%.0f per hour", name, total, window, ops, float64(total)*float64(time.Hour)/float64(window))
	}
}

// TestReplicator_MeasureLag measures commit-to-durable latency with the
// default sync interval: the time from a COMMIT until the store holds it.
// Opt-in: VWSTREAM_DBREPL_LAG_SAMPLES=20.
func TestReplicator_MeasureLag(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("VWSTREAM_DBREPL_LAG_SAMPLES"))
	if n <= 0 {
		t.Skip("set VWSTREAM_DBREPL_LAG_SAMPLES to measure replication lag")
	}
	var store objstore.Store = newMemStore()
	if os.Getenv(testenv.EnvEndpoint) != "" {
		store, _ = newS3(t, "lag")
	}
	path := tempDB(t)
	db := openTestDB(t, path)
	r, err := New(Options{DBPath: path, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	local := waitSynced(t, r, 1).LocalTXID
	var lags []time.Duration
	for i := range n {
		time.Sleep(time.Duration(300+i*137%900) * time.Millisecond) // spread commits over the tick
		start := time.Now()
		insertBatch(t, db, i*10, i*10+1)
		local = waitSynced(t, r, local+1).LocalTXID
		lags = append(lags, time.Since(start))
	}
	slices.Sort(lags)
	var sum time.Duration
	for _, l := range lags {
		sum += l
	}
	t.Logf("%s: commit->durable over %d commits: min %v, median %v, mean %v, max %v",
		store, n, lags[0], lags[len(lags)/2], sum/time.Duration(n), lags[n-1])
}
