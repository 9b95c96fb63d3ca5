package status

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/vwstream/vwstream/internal/config"
)

// Options describe the node a Board reports on.
type Options struct {
	Role    config.Role
	Mode    config.Mode
	Version string
	Limits  Limits           // what /readyz and the status field judge against
	Clock   func() time.Time // time.Now when nil
}

// Board collects the node's state from its components. Components either push
// (Update, SetError) when something happens or are pulled (AddSource) each time a
// document is made; both are safe for concurrent use.
type Board struct {
	opts    Options
	changed chan struct{}

	mu      sync.Mutex
	doc     Status            // state and sections as last pushed
	errs    map[string]string // component -> its current error
	sources []func(*Status)
}

// NewBoard starts a board in StateStarting.
func NewBoard(opts Options) *Board {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &Board{
		opts:    opts,
		changed: make(chan struct{}, 1),
		errs:    map[string]string{},
		doc: Status{
			Status:    StateStarting,
			Role:      opts.Role,
			Mode:      opts.Mode,
			Version:   opts.Version,
			StartedAt: opts.Clock().UTC().Truncate(time.Second),
		},
	}
}

// Limits returns the limits the board judges health against.
func (b *Board) Limits() Limits {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.opts.Limits
}

// SetLimits replaces the limits, for a node whose role changed (promote).
func (b *Board) SetLimits(l Limits) {
	b.mu.Lock()
	b.opts.Limits = l
	b.mu.Unlock()
	b.notify()
}

// SetState sets the node's state: StateStarting until the child runs, StateOK
// while running (it turns to "error" by itself while errors are present),
// StateStopping during shutdown.
func (b *Board) SetState(state string) {
	b.Update(func(s *Status) { s.Status = state })
}

// Update changes the document under the board's lock, e.g.
// b.Update(func(s *Status) { s.Snapshot = &status.Snapshot{...} }). Errors and
// the timestamps are derived by Snapshot; report errors with SetError.
func (b *Board) Update(fn func(*Status)) {
	b.mu.Lock()
	fn(&b.doc)
	b.mu.Unlock()
	b.notify()
}

// SetError records the current error of a component ("vaultwarden", "notify",
// ...); an empty msg clears it. The message must not contain a secret.
func (b *Board) SetError(component, msg string) {
	b.mu.Lock()
	if msg == "" {
		delete(b.errs, component)
	} else {
		b.errs[component] = msg
	}
	b.mu.Unlock()
	b.notify()
}

// AddSource registers fn to fill in part of every document made from now on,
// for components that are cheaper to poll than to push (replication progress).
// fn runs without the board's lock held, on a private copy.
func (b *Board) AddSource(fn func(*Status)) {
	b.mu.Lock()
	b.sources = append(b.sources, fn)
	b.mu.Unlock()
}

// Changed receives a value after any push, for writers that write on change.
func (b *Board) Changed() <-chan struct{} { return b.changed }

func (b *Board) notify() {
	select {
	case b.changed <- struct{}{}:
	default:
	}
}

// Snapshot makes the current document: pushed state, polled sources, the time,
// the list of errors and the status field derived from them.
func (b *Board) Snapshot() Status {
	b.mu.Lock()
	doc := clone(b.doc)
	errs := maps.Clone(b.errs)
	sources := slices.Clone(b.sources)
	b.mu.Unlock()

	for _, fn := range sources {
		fn(&doc)
	}
	now := b.opts.Clock().UTC()
	doc.Timestamp = now.Unix()
	doc.Datetime = now.Format(time.RFC3339)
	doc.Errors = doc.componentErrors(errs)
	if doc.Status == StateOK && len(doc.Errors) > 0 {
		doc.Status = StateError
	}
	return doc
}

// Ready reports whether the node is started and healthy by the board's limits,
// and if not, why (one line per problem).
func (b *Board) Ready() (bool, []string) {
	doc := b.Snapshot()
	problems := doc.Problems(b.Limits(), b.opts.Clock())
	return len(problems) == 0, problems
}

// componentErrors lists the errors components reported, in a stable order.
func (s *Status) componentErrors(pushed map[string]string) []string {
	errs := []string{}
	for _, k := range slices.Sorted(maps.Keys(pushed)) {
		errs = append(errs, k+": "+pushed[k])
	}
	if s.DB != nil && s.DB.LastError != "" {
		errs = append(errs, "db: "+s.DB.LastError)
	}
	if s.Files != nil && s.Files.LastError != "" {
		errs = append(errs, "files: "+s.Files.LastError)
	}
	if s.Files != nil && s.Files.Alarm != "" {
		errs = append(errs, "files: "+s.Files.Alarm)
	}
	if s.Snapshot != nil && s.Snapshot.LastResult == ResultError {
		msg := "last snapshot failed"
		if s.Snapshot.LastError != "" {
			msg += ": " + s.Snapshot.LastError
		}
		errs = append(errs, "snapshot: "+msg)
	}
	if p := s.leaseProblem(); p != "" {
		errs = append(errs, p)
	}
	if p := s.childProblem(); p != "" {
		errs = append(errs, p)
	}
	return errs
}

// clone copies s deeply enough that the copy can be changed freely.
func clone(s Status) Status {
	if s.DB != nil {
		v := *s.DB
		s.DB = &v
	}
	if s.Files != nil {
		v := *s.Files
		s.Files = &v
	}
	if s.Snapshot != nil {
		v := *s.Snapshot
		s.Snapshot = &v
	}
	if s.Lease != nil {
		v := *s.Lease
		s.Lease = &v
	}
	if s.Child != nil {
		v := *s.Child
		if v.ExitCode != nil {
			c := *v.ExitCode
			v.ExitCode = &c
		}
		s.Child = &v
	}
	if s.Drill != nil {
		v := *s.Drill
		s.Drill = &v
	}
	s.Alerts = slices.Clone(s.Alerts)
	s.Errors = slices.Clone(s.Errors)
	return s
}
