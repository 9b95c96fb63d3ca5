package snapshot_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/notify"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/snapshot"
)

// recordingStore notes when the first upload starts and can fail it.
type recordingStore struct {
	objstore.Store
	mu       sync.Mutex
	firstPut time.Time
	failPut  error
}

func (s *recordingStore) Put(ctx context.Context, key string, r io.Reader, o objstore.PutOptions) (objstore.ObjectInfo, error) {
	s.mu.Lock()
	if s.firstPut.IsZero() {
		s.firstPut = time.Now()
	}
	fail := s.failPut
	s.mu.Unlock()
	if fail != nil {
		return objstore.ObjectInfo{}, fail
	}
	return s.Store.Put(ctx, key, r, o)
}

// fakeQuiesce stands in for the container operations: it records when it
// "stopped" and "restarted".
type fakeQuiesce struct {
	stopped int
	err     error
	resumes int
	resumed time.Time
	spools  []string // spool folders present at resume time
	dataDir string
}

func (f *fakeQuiesce) quiesce(context.Context) (*snapshot.Pause, error) {
	stoppedAt := time.Now()
	return &snapshot.Pause{Stopped: f.stopped, Resume: func(context.Context) ([]snapshot.Container, error) {
		f.resumes++
		f.resumed = time.Now()
		f.spools, _ = filepath.Glob(filepath.Join(f.dataDir, ".vwstream-spool-*"))
		return []snapshot.Container{{Name: "vw", StoppedAt: stoppedAt, StartedAt: f.resumed,
			Seconds: f.resumed.Sub(stoppedAt).Seconds(), Restarted: true}}, nil
	}}, f.err
}

// TestRun_QuiesceResumesBeforeUpload: with a container stopped, the files are
// spooled, the container restarts before the upload's first byte (recorded
// times), the spool is gone afterwards and the snapshot restores byte for byte.
func TestRun_QuiesceResumesBeforeUpload(t *testing.T) {
	dir := newVault(t)
	store := &recordingStore{Store: newLocal(t)}
	q := &fakeQuiesce{stopped: 1, dataDir: dir}
	res := takeSnapshot(t, dir, snapshot.Options{Quiesce: q.quiesce,
		Encrypter: encrypter(t, seal.SnapshotOptions{Mode: seal.SnapshotGPGPassphrase, GPGPassphrase: testPassphrase})},
		snapshot.Destination{Name: "target", Store: store})
	if q.resumes != 1 || !q.resumed.Before(store.firstPut) {
		t.Fatalf("resumed %d time(s) at %v; upload started at %v", q.resumes, q.resumed, store.firstPut)
	}
	if len(q.spools) != 1 || res.SpoolBytes == 0 {
		t.Fatalf("spool at resume: %v, %d bytes; want one folder with the files", q.spools, res.SpoolBytes)
	}
	if len(res.Containers) != 1 || !res.Containers[0].Restarted {
		t.Fatalf("result containers: %+v", res.Containers)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".vwstream-*")); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	to := filepath.Join(t.TempDir(), "data")
	if _, err := snapshot.Restore(t.Context(), snapshot.RestoreOptions{Store: store.Store, Name: "latest", To: to,
		Keys: seal.SnapshotKeys{GPGPassphrase: testPassphrase}}); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dataFiles(t, to), dataFiles(t, dir))
}

// TestRun_QuiesceNothingStopped: no container stopped, nothing spooled.
func TestRun_QuiesceNothingStopped(t *testing.T) {
	dir := newVault(t)
	q := &fakeQuiesce{dataDir: dir}
	res := takeSnapshot(t, dir, snapshot.Options{Quiesce: q.quiesce}, snapshot.Destination{Name: "target", Store: newLocal(t)})
	if q.resumes != 1 || len(q.spools) != 0 || res.SpoolBytes != 0 {
		t.Fatalf("resumes %d, spools %v, %d bytes; want one resume and no spool", q.resumes, q.spools, res.SpoolBytes)
	}
}

// TestRun_QuiesceFailures: an upload that fails and a quiesce that fails
// (a pre command) both resume once and leave no spool; the failed quiesce
// uploads nothing.
func TestRun_QuiesceFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		qerr   error
		putErr error
		want   string
	}{
		{"upload fails", nil, errors.New("S3 down"), "S3 down"},
		{"pre command fails", errors.New("pre command exited 1"), nil, "before capture: pre command exited 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newVault(t)
			local := newLocal(t)
			store := &recordingStore{Store: local, failPut: tc.putErr}
			q := &fakeQuiesce{stopped: 1, err: tc.qerr, dataDir: dir}
			var sent []notify.Event
			o := snapshot.Options{Quiesce: q.quiesce, Source: snapshot.SourceFromFolder(dir), Notifier: notifierFunc(func(ev notify.Event) { sent = append(sent, ev) })}
			res, err := snapshot.Run(t.Context(), o, []snapshot.Destination{{Name: "target", Store: store}})
			if err == nil || !strings.Contains(err.Error(), tc.want) || res.Error == "" {
				t.Fatalf("Run: %v; want an error with %q", err, tc.want)
			}
			if q.resumes != 1 || len(res.Containers) != 1 {
				t.Fatalf("resumed %d time(s), result containers %+v", q.resumes, res.Containers)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".vwstream-*")); len(left) != 0 {
				t.Fatalf("left behind: %v", left)
			}
			if len(sent) != 1 || sent[0].OK || len(sent[0].Containers) != 1 || !sent[0].Containers[0].Restarted {
				t.Fatalf("notification: %+v; want the failure with the restarted container", sent)
			}
			if tc.qerr != nil && !store.firstPut.IsZero() {
				t.Fatal("a failed pre command still uploaded")
			}
		})
	}
}

type notifierFunc func(notify.Event)

func (f notifierFunc) Notify(_ context.Context, ev notify.Event) error { f(ev); return nil }

// TestRun_FinishAfterUpload: the post commands (Finish) run once the
// snapshot is stored, and their failure fails the run after it is stored.
func TestRun_FinishAfterUpload(t *testing.T) {
	dir := newVault(t)
	store := &recordingStore{Store: newLocal(t)}
	var finished time.Time
	q := func(context.Context) (*snapshot.Pause, error) {
		return &snapshot.Pause{Resume: func(context.Context) ([]snapshot.Container, error) { return nil, nil },
			Finish: func(context.Context) error { finished = time.Now(); return errors.New("post command exited 2") }}, nil
	}
	res, err := snapshot.Run(t.Context(), snapshot.Options{Quiesce: q, Source: snapshot.SourceFromFolder(dir)},
		[]snapshot.Destination{{Name: "target", Store: store}})
	if err == nil || !strings.Contains(err.Error(), "after snapshot: post command exited 2") || res.Size == 0 {
		t.Fatalf("Run: %v (size %d)", err, res.Size)
	}
	if !finished.After(store.firstPut) {
		t.Fatalf("post commands at %v, upload started %v", finished, store.firstPut)
	}
}

// TestRun_ResumeFailureFailsRun: a container that did not restart fails the
// run (the snapshot itself is stored) and the result says which.
func TestRun_ResumeFailureFailsRun(t *testing.T) {
	dir := newVault(t)
	q := func(context.Context) (*snapshot.Pause, error) {
		return &snapshot.Pause{Stopped: 1, Resume: func(context.Context) ([]snapshot.Container, error) {
			return []snapshot.Container{{Name: "vw", Error: "no such container"}}, errors.New("vw: start: no such container")
		}}, nil
	}
	res, err := snapshot.Run(t.Context(), snapshot.Options{Quiesce: q, Source: snapshot.SourceFromFolder(dir)},
		[]snapshot.Destination{{Name: "target", Store: newLocal(t)}})
	if err == nil || !strings.Contains(err.Error(), "after capture: vw: start") || res.Size == 0 {
		t.Fatalf("Run: %v (size %d); want the restart failure and a stored snapshot", err, res.Size)
	}
}
