package filesync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
)

// ErrMassDeletion is wrapped by the alarm error when the guard refuses to mirror
// deletions: an included folder is missing or unreadable, or lost most of its files.
var ErrMassDeletion = errors.New("remote deletion refused")

// Status is what the syncer is doing, for the status file, /metrics and healthcheck.
type Status struct {
	Pending       int       `json:"pending"`         // files waiting to be uploaded or uploading
	LastSync      time.Time `json:"last_sync"`       // last moment everything known was in the store
	LastReconcile time.Time `json:"last_reconcile"`  // end of the last full reconcile that listed the store
	Error         string    `json:"error,omitempty"` // what fails now; cleared by the failing operation's next success
	LastError     string    `json:"last_error,omitempty"`
	LastErrorAt   time.Time `json:"last_error_at"`
	FilesUploaded int64     `json:"files_uploaded"`
	BytesUploaded int64     `json:"bytes_uploaded"`
	FilesTrashed  int64     `json:"files_trashed"`
	Alarm         bool      `json:"alarm"` // the mass-deletion guard is refusing deletions
	AlarmReason   string    `json:"alarm_reason,omitempty"`
}

// pending is a file known to need a look: changed, or found out of date.
type pending struct {
	abs       string
	lastEvent time.Time // debounce: wait until Debounce after this
	notBefore time.Time // stability or retry backoff
	attempts  int
	flushed   bool // already tried by Close's flush
}

// Syncer mirrors the included paths into the store. Open starts it; Close stops it.
type Syncer struct {
	opts    Options
	paths   *paths
	manPath string
	watcher *fsnotify.Watcher

	mu          sync.Mutex
	cond        *sync.Cond // readyQ got work, or closing
	man         *manifest
	manDirty    bool
	lastSave    time.Time
	saveMu      sync.Mutex                     // held by a manifest write, taken before mu
	remote      map[string]objstore.ObjectInfo // from the last listing plus our puts; nil before one
	recentPuts  map[string]objstore.ObjectInfo // puts during a running listing
	dirty       map[string]*pending
	readyQ      []string
	inflight    map[string]bool
	status      Status
	errs        map[string]string // failing operation (opManifest, opUpload+key, ...) -> its error
	requests    requestWatch      // the store requests in flight
	reconcileAt time.Time         // a requested reconcile; zero when none
	nextFull    time.Time         // the periodic reconcile
	reconciling bool
	scanned     bool // a reconcile has queued what the folder held
	closing     bool

	flushing atomic.Bool

	loopCtx    context.Context // ends the loop and reconciles
	stopLoop   context.CancelFunc
	workCtx    context.Context // ends uploads and deletions
	stopWork   context.CancelFunc
	loopDone   chan struct{}
	workers    sync.WaitGroup
	reconciles sync.WaitGroup
	closeOnce  sync.Once
	closeErr   error
}

// Open loads the manifest, starts watching the included paths and schedules a
// full reconcile at once, which uploads whatever changed while vwstream was not
// running. It returns once the watches are in place.
func Open(ctx context.Context, opts Options) (*Syncer, error) {
	if opts.Store == nil {
		return nil, errors.New("open file sync: no store")
	}
	opts = opts.withDefaults()
	s := &Syncer{
		opts:     opts,
		manPath:  filepath.Join(opts.StateDir, ManifestName),
		dirty:    map[string]*pending{},
		inflight: map[string]bool{},
		errs:     map[string]string{},
		loopDone: make(chan struct{}),
	}
	s.opts.Store = watchedStore{Store: opts.Store, w: &s.requests}
	s.cond = sync.NewCond(&s.mu)
	exclude := append(slices.Clone(opts.Exclude), opts.StateDir)
	if opts.DataDir != "" {
		exclude = append(exclude, filepath.Join(opts.DataDir, "tmp"))
	}
	s.paths = newPaths(opts.Includes, exclude)
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("open file sync: state folder: %w", err)
	}
	man, err := loadManifest(s.manPath)
	if err != nil {
		opts.Logger.Warn("file sync manifest not usable, the next reconcile uploads every file again", "error", err)
	}
	s.man = man
	if s.watcher, err = fsnotify.NewWatcher(); err != nil {
		return nil, fmt.Errorf("open file sync: watcher: %w", err)
	}
	s.watchAll()
	s.loopCtx, s.stopLoop = context.WithCancel(context.WithoutCancel(ctx))
	s.workCtx, s.stopWork = context.WithCancel(context.WithoutCancel(ctx))
	now := time.Now()
	s.reconcileAt = now
	s.nextFull = now.Add(opts.ReconcileInterval)
	for range opts.Parallelism {
		s.workers.Add(1)
		go s.worker()
	}
	go s.loop()
	return s, nil
}

// tickEvery is how often the loop looks for files whose debounce or stability
// wait is over: a fraction of the shorter wait, so latency stays close to it.
func (s *Syncer) tickEvery() time.Duration {
	d := min(s.opts.Debounce, s.opts.StableFor) / 4
	return min(max(d, 10*time.Millisecond), 250*time.Millisecond)
}

func (s *Syncer) loop() {
	defer close(s.loopDone)
	tick := time.NewTicker(s.tickEvery())
	defer tick.Stop()
	s.step(time.Now()) // the first reconcile starts now, not at the first tick
	for {
		select {
		case <-s.loopCtx.Done():
			return
		case ev, ok := <-s.watcher.Events:
			if !ok {
				return
			}
			s.handleEvent(ev)
		case err, ok := <-s.watcher.Errors:
			if !ok {
				return
			}
			// Typically an event queue overflow: events were lost, so look at everything.
			s.opts.Logger.Warn("file watcher error, reconciling", "error", err)
			s.requestReconcile(time.Now())
		case now := <-tick.C:
			s.step(now)
		}
	}
}

// step moves files whose wait is over to the upload queue, starts a due
// reconcile and saves the manifest when it changed.
func (s *Syncer) step(now time.Time) {
	s.mu.Lock()
	s.dispatchLocked(now, false)
	if !s.reconciling && ((!s.reconcileAt.IsZero() && !now.Before(s.reconcileAt)) || !now.Before(s.nextFull)) {
		s.reconciling = true
		s.reconcileAt = time.Time{}
		s.nextFull = now.Add(s.opts.ReconcileInterval)
		s.reconciles.Add(1)
		go func() {
			defer s.reconciles.Done()
			if err := s.reconcile(s.loopCtx); err != nil && s.loopCtx.Err() == nil {
				s.opts.Logger.Error("file sync reconcile", "error", err)
			}
		}()
	}
	save := s.manDirty && now.Sub(s.lastSave) >= time.Second
	s.mu.Unlock()
	if save {
		s.save(now)
	}
}

// dispatchLocked queues every pending file whose wait is over (all of them when force).
func (s *Syncer) dispatchLocked(now time.Time, force bool) {
	n := 0
	for key, p := range s.dirty {
		if s.inflight[key] {
			continue
		}
		if force {
			if p.flushed {
				continue
			}
			p.flushed = true
		} else if now.Before(p.lastEvent.Add(s.opts.Debounce)) || now.Before(p.notBefore) {
			continue
		}
		s.inflight[key] = true
		s.readyQ = append(s.readyQ, key)
		n++
	}
	if n > 0 {
		s.cond.Broadcast()
	}
}

// save writes the manifest when it changed since the last save. It is
// encoded under the lock but written and synced outside it: uploads settling
// meanwhile do not wait for the disk. saveMu keeps the writes in the order of
// their snapshots, so an older one never replaces a newer.
func (s *Syncer) save(now time.Time) {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	if !s.manDirty {
		s.mu.Unlock()
		return
	}
	data, err := s.man.encode()
	s.manDirty = false
	s.mu.Unlock()
	if err == nil {
		err = writeFileAtomic(s.manPath, data)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setErrLocked(opManifest, err)
	if err != nil {
		s.manDirty = true // the next step tries again
		return
	}
	s.lastSave = now
	s.caughtUpLocked(now)
}

// requestReconcile asks for a full reconcile at (or soon after) at.
func (s *Syncer) requestReconcile(at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requestReconcileLocked(at)
}

func (s *Syncer) requestReconcileLocked(at time.Time) {
	if s.reconcileAt.IsZero() || at.Before(s.reconcileAt) {
		s.reconcileAt = at
	}
}

// markDirty records that key (at abs) changed at t; a zero t skips the debounce.
func (s *Syncer) markDirty(key, abs string, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.markDirtyLocked(key, abs, t)
}

func (s *Syncer) markDirtyLocked(key, abs string, t time.Time) {
	p := s.dirty[key]
	if p == nil {
		s.dirty[key] = &pending{abs: abs, lastEvent: t}
		return
	}
	if t.After(p.lastEvent) {
		p.lastEvent = t
	}
	// A new event resets a retry backoff: the file changed, try again.
	p.notBefore, p.attempts = time.Time{}, 0
}

func (s *Syncer) worker() {
	defer s.workers.Done()
	var buf []byte
	for {
		s.mu.Lock()
		for len(s.readyQ) == 0 && !s.closing {
			s.cond.Wait()
		}
		if len(s.readyQ) == 0 {
			s.mu.Unlock()
			return
		}
		key := s.readyQ[0]
		s.readyQ = s.readyQ[1:]
		p := s.dirty[key]
		delete(s.dirty, key)
		s.mu.Unlock()
		if p == nil {
			s.finish(key)
			continue
		}
		res := s.upload(s.workCtx, key, p.abs, &buf)
		if cap(buf) > keepReadBuf {
			buf = nil
		}
		s.settle(key, p, res)
	}
}

func (s *Syncer) finish(key string) {
	s.mu.Lock()
	delete(s.inflight, key)
	s.mu.Unlock()
}

// settle records the outcome of one upload attempt.
func (s *Syncer) settle(key string, p *pending, res result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, key)
	now := time.Now()
	switch res.outcome {
	case uploaded, unchanged:
		e := res.entry
		if res.outcome == unchanged {
			e = s.man.Files[key]
			e.Size, e.MTime = res.entry.Size, res.entry.MTime
		} else {
			s.status.FilesUploaded++
			s.status.BytesUploaded += res.entry.Size
			s.retryFailedLocked(now)
			if s.remote != nil {
				s.remote[key] = res.info
			}
			if s.recentPuts != nil {
				s.recentPuts[key] = res.info
			}
		}
		s.man.Files[key] = e
		delete(s.man.Missing, key)
		s.manDirty = true
		s.setErrLocked(opUpload+key, nil)
	case gone:
		s.setErrLocked(opUpload+key, nil)
		_, known := s.man.Files[key]
		_, stored := s.remote[key]
		if (known || stored) && s.man.Missing[key].IsZero() {
			s.man.Missing[key] = now
			s.manDirty = true
			s.requestReconcileLocked(now.Add(s.opts.DeleteGrace))
		}
	case retry:
		if q := s.dirty[key]; q != nil {
			break // changed again meanwhile: the new event decides
		}
		p.notBefore = res.retryAt
		if res.err != nil {
			p.attempts++
			backoff := min(time.Second<<min(p.attempts-1, 6), time.Minute)
			p.notBefore = now.Add(backoff)
			s.setErrLocked(opUpload+key, res.err)
		}
		s.dirty[key] = p
	}
	s.caughtUpLocked(now)
}

// retryFailedLocked makes the files waiting out an upload error's backoff due
// now: an upload just went through, so the store answers again, and their
// errors should not stay in the status for up to a minute more.
//
// It runs after every upload, so it walks the failing operations (few), not
// the pending files: during a first sync thousands are pending, and a walk of
// them per upload made that sync quadratic, under the lock every worker needs.
func (s *Syncer) retryFailedLocked(now time.Time) {
	for op := range s.errs {
		key, ok := strings.CutPrefix(op, opUpload)
		if !ok {
			continue
		}
		if p := s.dirty[key]; p != nil && p.notBefore.After(now) {
			p.notBefore = now
		}
	}
}

// Status returns a snapshot of what the syncer is doing.
func (s *Syncer) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Pending = len(s.dirty) + len(s.inflight)
	st.Error = s.errorLocked(time.Now())
	return st
}

// Close stops watching, then uploads every pending file at once (without the
// stability wait: the caller has stopped Vaultwarden) within ShutdownTimeout or
// ctx, whichever ends first. Files not in the store by then are named in the error.
func (s *Syncer) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.close(ctx) })
	return s.closeErr
}

func (s *Syncer) close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ShutdownTimeout)
	defer cancel()
	s.stopLoop()
	werr := s.watcher.Close()
	<-s.loopDone
	s.reconciles.Wait()

	// Until one reconcile has scanned the folder, the files that were there
	// at Open are in no queue: a stop right after the start (or one that cut
	// the first reconcile short) would flush nothing and report success.
	s.mu.Lock()
	scan := !s.scanned && ctx.Err() == nil
	s.reconciling = scan
	s.mu.Unlock()
	var rerr error
	if scan {
		if rerr = s.reconcile(ctx); rerr != nil {
			rerr = fmt.Errorf("file sync flush: %w", rerr)
		}
	}

	s.flushing.Store(true)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	// A context that is over already (a fenced node) gets no flush at all:
	// not one more upload may start.
	for ctx.Err() == nil {
		s.mu.Lock()
		s.dispatchLocked(time.Now(), true)
		idle := len(s.inflight) == 0
		// One attempt each is all a shutdown has time for: stop once every file
		// left has had its attempt during the flush.
		done := idle && allFlushed(s.dirty)
		s.mu.Unlock()
		if done {
			break
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
			continue
		}
		break
	}
	s.stopWork()
	s.mu.Lock()
	s.closing = true
	s.cond.Broadcast()
	s.mu.Unlock()
	s.workers.Wait()

	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if rerr != nil {
		errs = append(errs, rerr)
	}
	if err := s.man.save(s.manPath); err != nil {
		errs = append(errs, err)
	}
	if werr != nil {
		errs = append(errs, fmt.Errorf("close watcher: %w", werr))
	}
	if n := len(s.dirty); n > 0 {
		keys := make([]string, 0, n)
		for k := range s.dirty {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if len(keys) > 10 {
			keys = append(keys[:10], "...")
		}
		errs = append(errs, fmt.Errorf("file sync flush: %d files not in the store: %s", n, strings.Join(keys, ", ")))
	}
	return errors.Join(errs...)
}

func allFlushed(m map[string]*pending) bool {
	for _, p := range m {
		if !p.flushed {
			return false
		}
	}
	return true
}

// Recorded returns the SHA-256 (hex) of what file sync last stored for each of
// its single-file includes (config.json, rsa_key*), keyed by object key: the
// files whose older copy put back would matter most (an old admin token, a
// replaced JWT key), which the replica's head records.
func (s *Syncer) Recorded() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for _, in := range s.opts.Includes {
		if in.Dir {
			continue
		}
		key := layout.Files + in.Name
		if e, ok := s.man.Files[key]; ok && e.Hash != "" {
			out[key] = e.Hash
		}
	}
	return out
}

// LocalPath is where the object key under files/ lands among includes; ok is
// false for a key they do not sync.
func LocalPath(includes []Include, key string) (string, bool) {
	abs, _, ok := newPaths(includes, nil).localOf(key)
	return abs, ok
}
