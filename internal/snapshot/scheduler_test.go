package snapshot_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/vwstream/vwstream/internal/snapshot"
)

// BACKUP_ON_STARTUP runs the job at Start, a run that would overlap is skipped,
// and Stop cancels and waits for the running job.
func TestScheduler_NoOverlap(t *testing.T) {
	var runs atomic.Int32
	started := make(chan struct{}, 4)
	job := func(ctx context.Context) error {
		runs.Add(1)
		started <- struct{}{}
		<-ctx.Done() // a long snapshot, until Stop
		return ctx.Err()
	}
	s := snapshot.NewScheduler(cron.Every(time.Hour), true, job, nil)
	s.Start(t.Context())
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("no run at startup")
	}
	if s.RunNow("test") {
		t.Fatal("a second run overlapped the first")
	}
	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not end the running job")
	}
	if got := runs.Load(); got != 1 {
		t.Fatalf("%d runs, want 1", got)
	}
}

// The cron schedule fires the job.
func TestScheduler_Schedule(t *testing.T) {
	ran := make(chan struct{}, 8)
	s := snapshot.NewScheduler(cron.Every(time.Second), false, func(context.Context) error {
		ran <- struct{}{}
		return nil
	}, nil)
	s.Start(t.Context())
	defer s.Stop()
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("the schedule never ran the job")
	}
}
