package snapshot_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// createWatch records every name created in the watched folders.
type createWatch struct {
	w       *fsnotify.Watcher
	mu      sync.Mutex
	created []string
	done    chan struct{}
}

func watchCreates(t *testing.T, dirs ...string) *createWatch {
	t.Helper()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	cw := &createWatch{w: w, done: make(chan struct{})}
	for _, d := range dirs {
		if err := w.Add(d); err != nil {
			w.Close()
			t.Fatal(err)
		}
	}
	go func() {
		defer close(cw.done)
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Rename) {
					cw.mu.Lock()
					cw.created = append(cw.created, ev.Name)
					cw.mu.Unlock()
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				t.Errorf("watch: %v", err) // an overflow would hide creations
			}
		}
	}()
	t.Cleanup(func() { w.Close() })
	return cw
}

// stop ends the watch and returns what was created.
func (cw *createWatch) stop() []string {
	cw.w.Close()
	<-cw.done
	cw.mu.Lock()
	defer cw.mu.Unlock()
	return cw.created
}

// dump is the stock sqlite3 CLI's .dump of a database: its schema and every
// row, in a canonical text form.
func dump(t *testing.T, sqlite3, db string) string {
	t.Helper()
	out, err := exec.Command(sqlite3, db, ".dump").Output()
	if err != nil {
		t.Fatalf("sqlite3 %s .dump: %v", db, err)
	}
	return string(out)
}

// TestRun_StreamsDatabaseWithoutTempFile: a WAL database is archived straight
// from one read transaction. While Vaultwarden-shaped writers run, the
// capture's transaction is pinned to a known state (a write lock held from
// before the capture until the stock sqlite3 CLI has taken its .backup of that
// same state); then the writers go on, committing before the stream starts,
// and the stream waits after its second page until they have committed more
// and a checkpoint has run. The restored
// database passes the CLI's integrity_check and its .dump equals the
// .backup's: the same rows as the transaction read, not the live ones. No file
// is created in the temp folder, $TMPDIR or beside the database, and the read
// transaction is over when the run returns.
func TestRun_StreamsDatabaseWithoutTempFile(t *testing.T) {
	sqlite3 := testenv.Tool(t, "sqlite3")
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	tempDir := filepath.Join(root, "temp")
	envTemp := filepath.Join(root, "env-temp")
	for _, d := range []string{tempDir, envTemp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	v, err := vaultsim.Create(dir, vaultsim.Options{Seed: 11, Size: vaultsim.SizeMedium, Attachments: 30})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx, cancel := context.WithCancel(t.Context())
	w := vaultsim.NewWorkload(v, vaultsim.WorkloadOptions{Rate: 300, Writers: 2, AttachmentRatio: 0.2,
		AttachmentMinSize: 4 << 10, AttachmentMaxSize: 32 << 10})
	done := make(chan error, 1)
	go func() { _, err := w.Run(ctx); done <- err }()
	stopWorkload := func() {
		if cancel == nil {
			return
		}
		cancel()
		cancel = nil
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("workload: %v", err)
		}
	}
	defer stopWorkload()
	time.Sleep(200 * time.Millisecond)

	pin, err := sql.Open("sqlite", vaultsim.DSN(v.DBPath())) // immediate transactions
	if err != nil {
		t.Fatal(err)
	}
	defer pin.Close()
	backup := filepath.Join(root, "backup.sqlite3")
	var lock *sql.Tx
	var txAtResume int64
	quiesce := func(ctx context.Context) (*snapshot.Pause, error) {
		var err error
		if lock, err = pin.BeginTx(ctx, nil); err != nil { // BEGIN IMMEDIATE: the writers wait
			return nil, err
		}
		return &snapshot.Pause{Resume: func(context.Context) ([]snapshot.Container, error) {
			// The capture's transaction is open; nothing has committed since.
			out, err := exec.Command(sqlite3, v.DBPath(), ".backup '"+backup+"'").CombinedOutput()
			txAtResume = w.Stats().Tx
			if rerr := lock.Rollback(); rerr != nil {
				t.Errorf("release the write lock: %v", rerr)
			}
			if err != nil {
				t.Errorf("sqlite3 .backup: %v: %s", err, out)
			}
			// Commits between the capture and the stream's start are not
			// the transaction's either.
			deadline := time.Now().Add(30 * time.Second)
			for w.Stats().Tx < txAtResume+10 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			return nil, nil
		}}, nil
	}
	var during struct {
		tx        int64
		frames    int
		checkpts  int
		streamErr error
	}
	snapshot.SetPageHook(t, func(pgno int64) {
		if pgno != 2 {
			return
		}
		deadline := time.Now().Add(30 * time.Second)
		for w.Stats().Tx < txAtResume+40 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		during.tx = w.Stats().Tx - txAtResume
		var busy, log, ckpt int
		if err := pin.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &ckpt); err != nil {
			during.streamErr = err
			return
		}
		during.frames, during.checkpts = log, ckpt
	})

	watch := watchCreates(t, dir, tempDir, envTemp)
	t.Setenv("TMPDIR", envTemp)
	src := snapshot.SourceFromFolder(dir)
	src.TempDir = tempDir
	store := newLocal(t)
	res, err := snapshot.Run(t.Context(), snapshot.Options{Source: src, Quiesce: quiesce},
		[]snapshot.Destination{{Name: "target", Store: store, Verify: true}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	created := watch.stop()
	if res.DBCopyBytes != 0 {
		t.Errorf("DBCopyBytes %d, want 0", res.DBCopyBytes)
	}
	for _, p := range created {
		rel, _ := filepath.Rel(root, p)
		name := filepath.Base(p)
		if filepath.Dir(p) == dir && strings.HasPrefix(name, vaultsim.DBName+"-") {
			continue // SQLite's own -wal and -shm
		}
		if fi, err := os.Stat(p); err == nil && fi.IsDir() && filepath.Dir(p) == dir && (name == "attachments" || name == "sends") {
			continue // the writers' folders
		}
		t.Errorf("created during the snapshot: %s", rel)
	}

	if during.streamErr != nil {
		t.Fatalf("checkpoint during the stream: %v", during.streamErr)
	}
	if during.tx < 40 {
		t.Fatalf("only %d transactions committed after the capture, before the stream's third page; want 40", during.tx)
	}
	t.Logf("after the capture: %d transactions committed, checkpoint: %d WAL frames, %d copied", during.tx, during.frames, during.checkpts)
	// The read transaction ended with the run: a TRUNCATE checkpoint, which
	// waits for every reader, empties the WAL once the writers stop.
	stopWorkload()
	var busy, log, ckpt int
	if err := pin.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &log, &ckpt); err != nil || busy != 0 {
		t.Fatalf("TRUNCATE checkpoint after the run: busy %d, %v; want a released read transaction", busy, err)
	}

	to := filepath.Join(root, "restored")
	got, err := snapshot.Restore(t.Context(), snapshot.RestoreOptions{Store: store, Name: res.Name, To: to})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got.Integrity != "ok" {
		t.Fatalf("restored integrity %q", got.Integrity)
	}
	restored := filepath.Join(to, vaultsim.DBName)
	sqliteIntegrity(t, sqlite3, restored)
	want := dump(t, sqlite3, backup)
	if d := dump(t, sqlite3, restored); d != want {
		t.Fatalf("the restored database differs from sqlite3's .backup of the same transaction (%d vs %d bytes of .dump)", len(d), len(want))
	}
	if dump(t, sqlite3, v.DBPath()) == want {
		t.Fatal("the live database equals the snapshot: the writers changed nothing after the capture")
	}
	checkRollbackHeader(t, restored)
	for _, f := range []string{restored + "-wal", restored + "-shm"} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after restore: %v; want none", filepath.Base(f), err)
		}
	}
}

// checkRollbackHeader: bytes 18 and 19 of the file say rollback journal (1),
// as in the VACUUM INTO copies earlier versions archived.
func checkRollbackHeader(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr := make([]byte, 100)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		t.Fatal(err)
	}
	if string(hdr[:16]) != "SQLite format 3\x00" || hdr[18] != 1 || hdr[19] != 1 {
		t.Fatalf("%s: header %q, format versions %d/%d; want an SQLite file marked 1/1", path, hdr[:16], hdr[18], hdr[19])
	}
}

// A database in a rollback-journal mode is still copied with VACUUM INTO (a
// read transaction held on it would block the writers): the copy is counted,
// removed after the run, and the archive restores to the same rows, laid out
// as archives of earlier versions were.
func TestRun_RollbackJournalDatabaseIsCopied(t *testing.T) {
	sqlite3 := testenv.Tool(t, "sqlite3")
	dir := newVault(t)
	db := filepath.Join(dir, vaultsim.DBName)
	if out, err := exec.Command(sqlite3, db, "PRAGMA journal_mode=DELETE").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "delete" {
		t.Fatalf("journal_mode=DELETE: %v: %s", err, out)
	}
	want := dump(t, sqlite3, db)
	tempDir := t.TempDir()
	src := snapshot.SourceFromFolder(dir)
	src.TempDir = tempDir
	store := newLocal(t)
	res, err := snapshot.Run(t.Context(), snapshot.Options{Source: src}, []snapshot.Destination{{Name: "target", Store: store, Verify: true}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.DBCopyBytes == 0 {
		t.Error("DBCopyBytes 0; want the VACUUM INTO copy's size")
	}
	if left, _ := os.ReadDir(tempDir); len(left) != 0 {
		t.Errorf("temp folder after the run: %v", left)
	}
	to := filepath.Join(t.TempDir(), "restored")
	if _, err := snapshot.Restore(t.Context(), snapshot.RestoreOptions{Store: store, Name: res.Name, To: to}); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	restored := filepath.Join(to, vaultsim.DBName)
	sqliteIntegrity(t, sqlite3, restored)
	if dump(t, sqlite3, restored) != want {
		t.Fatal("restored rows differ from the database's")
	}
	checkRollbackHeader(t, restored)
}

// When the upload fails, the fallback folder gets the archive streamed a
// second time from the same read transaction: it restores to the same rows,
// and the transaction is released when the run returns.
func TestRun_FallbackStreamsTheSameState(t *testing.T) {
	sqlite3 := testenv.Tool(t, "sqlite3")
	dir := newVault(t)
	db := filepath.Join(dir, vaultsim.DBName)
	want := dump(t, sqlite3, db)
	fallback := newLocal(t)
	store := drainThenFail{newLocal(t)}
	var passes int
	snapshot.SetPageHook(t, func(pgno int64) {
		if pgno == 1 {
			passes++
		}
	})
	res, err := snapshot.Run(t.Context(), snapshot.Options{Source: snapshot.SourceFromFolder(dir), Fallback: &snapshot.Fallback{Store: fallback}},
		[]snapshot.Destination{{Name: "target", Store: store, Verify: true}})
	if err == nil || res.Local == "" {
		t.Fatalf("Run: %v, local %q; want a failed run with the archive kept locally", err, res.Local)
	}
	if passes != 2 {
		t.Fatalf("the database was streamed %d time(s); want 2 (the failed upload, the fallback)", passes)
	}
	to := filepath.Join(t.TempDir(), "restored")
	if _, err := snapshot.Restore(t.Context(), snapshot.RestoreOptions{Store: fallback, Name: res.Name, To: to}); err != nil {
		t.Fatalf("Restore from the fallback folder: %v", err)
	}
	if dump(t, sqlite3, filepath.Join(to, vaultsim.DBName)) != want {
		t.Fatal("restored rows differ from the database's")
	}
	conn, err := sql.Open("sqlite", vaultsim.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var busy, log, ckpt int
	if err := conn.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &log, &ckpt); err != nil || busy != 0 {
		t.Fatalf("TRUNCATE checkpoint after the run: busy %d, %v; want a released read transaction", busy, err)
	}
}

// drainThenFail reads every upload to its end, then fails it, as a target
// that breaks at the last part would.
type drainThenFail struct{ objstore.Store }

func (drainThenFail) Put(_ context.Context, _ string, r io.Reader, _ objstore.PutOptions) (objstore.ObjectInfo, error) {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return objstore.ObjectInfo{}, err
	}
	return objstore.ObjectInfo{}, errors.New("target unreachable")
}
