package snapshot

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Quiesce prepares a capture: it runs the pre commands and stops what must
// not write during the capture (the labelled containers), then returns the
// Pause. It is built outside this package (cmd wiring), so snapshot knows no
// container API. When it fails after stopping something it still returns the
// Pause, and Run calls its Resume: every stopped container is restarted on
// every path.
type Quiesce func(ctx context.Context) (*Pause, error)

// Pause is what a Quiesce stopped.
type Pause struct {
	// Stopped is how many containers are stopped. With none the capture reads
	// the files in place; with some it sets them aside in a spool first, so
	// Resume can run before compression, encryption and upload.
	Stopped int
	// Resume restarts what was stopped (in dependency order). Run calls it
	// exactly once, right after the capture, also when the capture failed.
	Resume func(ctx context.Context) ([]Container, error)
	// Finish, when set, runs the post commands. Run calls it once the
	// snapshot is stored or has failed, before the notification, so a post
	// command that removes a dump never races the archive reading it.
	Finish func(ctx context.Context) error
}

// Container is one container stopped for a capture, as the run's result,
// status and notification report it.
type Container struct {
	Name      string    `json:"name"`
	StoppedAt time.Time `json:"stopped_at"`
	StartedAt time.Time `json:"started_at,omitzero"` // zero when it was not restarted
	Seconds   float64   `json:"seconds"`             // the stop window
	Restarted bool      `json:"restarted"`
	// Error is why it was not restarted ("" when it was, or when its
	// no-restart label says it stays stopped).
	Error string `json:"error,omitempty"`
}

// captureQuiesced is the capture step between o.Quiesce and its Resume: the
// database's state fixed (its read transaction outlives the Resume), the file list and, when containers are stopped, the spool.
// resumeErr is the restart's failure: the snapshot goes on, the run fails
// with it. finish is the Pause's Finish (nil without), for Run to call last.
func (o Options) captureQuiesced(ctx context.Context, res *Result) (c *capture, finish func(context.Context) error, resumeErr, err error) {
	if o.Quiesce == nil {
		c, err = captureSource(ctx, o.Source)
		return c, nil, nil, err
	}
	p, qerr := o.Quiesce(ctx)
	if qerr == nil {
		c, err = captureSource(ctx, o.Source)
		if err == nil && p != nil && p.Stopped > 0 {
			res.SpoolBytes, err = c.spool(o.spoolDir())
		}
	}
	if p != nil {
		finish = p.Finish
		if p.Resume != nil {
			res.Containers, resumeErr = p.Resume(context.WithoutCancel(ctx))
			if resumeErr != nil {
				resumeErr = fmt.Errorf("after capture: %w", resumeErr)
			}
		}
	}
	if qerr != nil {
		return nil, finish, resumeErr, fmt.Errorf("before capture: %w", qerr)
	}
	if err != nil {
		if c != nil {
			err = errors.Join(err, c.cleanup())
		}
		return nil, finish, resumeErr, err
	}
	return c, finish, resumeErr, nil
}

// spoolDir is where a spool is made: TempDir, else the data folder.
func (o Options) spoolDir() string {
	if o.Source.TempDir != "" {
		return o.Source.TempDir
	}
	return o.Source.DataFolder
}
