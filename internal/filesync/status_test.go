package filesync_test

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/filesync"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// fill writes to dir until its file system is full and returns the file.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return p
		}
	}
}

// A full disk under the manifest is an error in the status while it lasts,
// and the error goes as soon as the manifest is saved again, with the last
// sync moving on: not at the next full reconcile (an hour away here).
func TestSyncer_StatusClearsWhenDiskFreed(t *testing.T) {
	dir := newVault(t, vaultsim.Options{Seed: 21, Attachments: 4})
	state := testenv.Tmpfs(t, 256<<10)
	filler := fill(t, state)
	opts := fastOptions(dir, newLocal(t))
	opts.StateDir = state
	s := open(t, opts)

	var st filesync.Status
	waitFor(t, 20*time.Second, func() bool {
		st = s.Status()
		return strings.Contains(st.Error, "no space left")
	})
	t.Logf("disk full: error %q", st.Error)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	// The manifest is saved at most a second after it changes; a few seconds
	// leave room for a busy machine while staying far below the reconcile.
	waitFor(t, 5*time.Second, func() bool {
		st = s.Status()
		return st.Error == "" && st.LastSync.After(freed)
	})
	t.Logf("error cleared %v after the disk was freed; last sync %s", time.Since(freed).Round(time.Millisecond), st.LastSync.Format(time.RFC3339Nano))
	if st.LastError == "" || !strings.Contains(st.LastError, "no space left") {
		t.Errorf("LastError %q: the record of the failure is lost", st.LastError)
	}
	if _, err := os.Stat(filepath.Join(state, filesync.ManifestName)); err != nil {
		t.Errorf("manifest not saved after the disk was freed: %v", err)
	}

	// A new file is uploaded and the status stays clean.
	writeFile(t, filepath.Join(dir, "attachments", "after-free", "a"), randomData(1000, 3))
	waitFor(t, 10*time.Second, func() bool { st = s.Status(); return st.Pending == 0 && st.FilesUploaded > 0 })
	if st.Error != "" {
		t.Errorf("error after recovery: %q", st.Error)
	}
}

// A store that accepts requests and never answers is an error in the status
// once an upload has waited StallTimeout (the client's own timeouts are far
// longer), and the error clears when the store answers again.
func TestSyncer_S3_HungStoreInStatus(t *testing.T) {
	env := testenv.NewS3(t)
	proxy := newFaultProxy(t, env.Endpoint)
	dir := newVault(t, vaultsim.Options{Seed: 22, Attachments: 3})
	opts := fastOptions(dir, newS3(t, env, proxy.URL))
	opts.StallTimeout = 3 * time.Second
	start := time.Now()
	s := open(t, opts)
	if st := waitIdle(t, s, start); st.Error != "" {
		t.Fatalf("error before the hang: %q", st.Error)
	}

	proxy.hang()
	data := randomData(5000, 9)
	writeFile(t, filepath.Join(dir, "attachments", "during-hang", "a"), data)
	waitFor(t, 10*time.Second, func() bool { return !proxy.firstHeld().IsZero() })
	held := proxy.firstHeld()
	// One tick of slack past the stall timeout.
	var st filesync.Status
	waitFor(t, opts.StallTimeout+time.Second, func() bool {
		st = s.Status()
		return strings.Contains(st.Error, "not answering")
	})
	t.Logf("hung store in the status %v after the upload was held: %q", time.Since(held).Round(time.Millisecond), st.Error)

	proxy.resume()
	resumed := time.Now()
	waitFor(t, 10*time.Second, func() bool {
		st = s.Status()
		return st.Error == "" && st.Pending == 0 && st.LastSync.After(resumed)
	})
	t.Logf("error cleared %v after the store answered again", time.Since(resumed).Round(time.Millisecond))
	got, err := rawGet(t, env, "vw/files/attachments/during-hang/a")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file held during the hang: %d bytes, %v", len(got), err)
	}
}

// Uploads the store refuses are an error while they fail; once the store takes
// uploads again, the first one that goes through retries the others at once,
// so their error leaves the status without waiting out their backoff.
func TestSyncer_S3_UploadErrorClears(t *testing.T) {
	env := testenv.NewS3(t)
	proxy := newFaultProxy(t, env.Endpoint)
	dir := newVault(t, vaultsim.Options{Seed: 23, Attachments: 2})
	opts := fastOptions(dir, newS3(t, env, proxy.URL))
	start := time.Now()
	s := open(t, opts)
	waitIdle(t, s, start)

	proxy.refuseWhen(func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/refused-")
	})
	for i := range 3 {
		writeFile(t, filepath.Join(dir, "attachments", "c", "refused-"+string(rune('a'+i))), randomData(2000+i, byte(i)))
	}
	var st filesync.Status
	waitFor(t, 10*time.Second, func() bool { st = s.Status(); return strings.Contains(st.Error, "3 files failing to upload") })
	// Long enough for the backoff to reach 8 s (1, 2, 4, 8).
	time.Sleep(8 * time.Second)
	t.Logf("while refused: %q", s.Status().Error)

	proxy.refuseWhen(func(*http.Request) bool { return false })
	writeFile(t, filepath.Join(dir, "attachments", "c", "accepted"), randomData(1000, 7))
	healed := time.Now()
	waitFor(t, 3*time.Second, func() bool {
		st = s.Status()
		return st.Error == "" && st.Pending == 0 && st.LastSync.After(healed)
	})
	t.Logf("error cleared %v after the store took uploads again", time.Since(healed).Round(time.Millisecond))
	for i := range 3 {
		if _, err := rawGet(t, env, "vw/files/attachments/c/refused-"+string(rune('a'+i))); err != nil {
			t.Errorf("refused-%c not stored: %v", 'a'+i, err)
		}
	}
}
