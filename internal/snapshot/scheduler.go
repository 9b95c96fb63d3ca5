package snapshot

import (
	"context"
	"log/slog"
	"sync"

	"github.com/robfig/cron/v3"
)

// Scheduler runs a job on a cron schedule (and once at start when asked),
// never two at once: a run that would overlap the previous one is skipped and
// logged.
type Scheduler struct {
	// Name is what the log lines call a run; "snapshot" unless set before Start.
	Name string

	schedule  cron.Schedule
	onStartup bool
	job       func(ctx context.Context) error
	log       *slog.Logger

	running sync.Mutex // held while a job runs
	cron    *cron.Cron
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// NewScheduler returns a stopped scheduler; schedule is BACKUP_CRON parsed in
// TZ, job is typically a closure over Run.
func NewScheduler(schedule cron.Schedule, onStartup bool, job func(ctx context.Context) error, log *slog.Logger) *Scheduler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{Name: "snapshot", schedule: schedule, onStartup: onStartup, job: job, log: log}
}

// Start begins scheduling; jobs get a context derived from ctx.
func (s *Scheduler) Start(ctx context.Context) {
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.cron = cron.New()
	if s.schedule != nil {
		s.cron.Schedule(s.schedule, cron.FuncJob(func() { s.RunNow("schedule") }))
	}
	s.cron.Start()
	if s.onStartup {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.RunNow("startup")
		}()
	}
}

// RunNow runs the job unless one is running, and reports whether it ran.
func (s *Scheduler) RunNow(reason string) bool {
	if !s.running.TryLock() {
		s.log.Warn(s.Name+" skipped: the previous one is still running", "trigger", reason)
		return false
	}
	defer s.running.Unlock()
	ctx := s.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	if ctx.Err() != nil {
		return false
	}
	s.log.Info(s.Name+" starting", "trigger", reason)
	if err := s.job(ctx); err != nil {
		s.log.Error("scheduled "+s.Name+" failed", "trigger", reason, "error", err)
	}
	return true
}

// Stop cancels a running job, stops scheduling and waits for the job to end.
func (s *Scheduler) Stop() {
	if s.cron == nil {
		return
	}
	s.cancel()
	<-s.cron.Stop().Done()
	s.wg.Wait()
	s.running.Lock() // waits for a RunNow called from elsewhere
	//lint:ignore SA2001 a barrier: waits for a running job, guards nothing
	s.running.Unlock()
}
