package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vwstream/vwstream/internal/drill"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// `vwstream drill` on an intact replica and snapshot passes, restores the
// replica's newest transaction and reports its duration; after a byte run of
// the snapshot archive is flipped in the bucket it fails (exit 1) and pings
// the dead man's switch's /fail. No secret reaches the output.
func TestDrill_PassesThenFailsOnDamagedSnapshot(t *testing.T) {
	s := testenv.NewS3(t)
	env := replicaFixture(t, s, true)
	v, err := vaultsim.Create(filepath.Join(t.TempDir(), "data"), vaultsim.Options{Seed: 5, Size: "small"})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	var (
		mu    sync.Mutex
		pings []string
	)
	hc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		pings = append(pings, r.URL.Path)
		mu.Unlock()
	}))
	t.Cleanup(hc.Close)
	const pass = "drill snapshot S3CR3T"
	// The fixture replicates the database only: its attachment files are not
	// in files/, so the drill checks them only where they are synced.
	env = withEnv(env, "SYNC_INCLUDE_ATTACHMENTS=false", "LOG_LEVEL=error", "DATA_FOLDER="+v.Dir, "GPG_PASSPHRASE="+pass, "HEALTHCHECK_PING_URL="+hc.URL+"/hc/d1")
	if code, out, stderr := invoke(t, env, "backup"); code != exitOK {
		t.Fatalf("backup: exit %d\n%s%s", code, out, stderr)
	}

	code, out, stderr := invoke(t, env, "drill", "--json")
	var res drill.Result
	if err := json.Unmarshal([]byte(out), &res); code != exitOK || err != nil {
		t.Fatalf("drill --json: exit %d, %v\n%s%s", code, err, out, stderr)
	}
	if !res.OK || res.Seconds <= 0 || res.Replica == nil || res.Snapshot == nil {
		t.Fatalf("drill of an intact replica and snapshot: %s", out)
	}
	if res.Replica.TXID == 0 || res.Replica.TXID != res.Replica.AnnouncedTXID || res.Snapshot.Integrity != "ok" {
		t.Errorf("drill result %s", out)
	}
	t.Logf("drill: %.2fs (replica %s, snapshot %s)", res.Seconds, res.Replica.Duration, res.Snapshot.Duration)
	code, out, stderr = invoke(t, env, "drill")
	if code != exitOK || !strings.Contains(out, "drill passed in") {
		t.Fatalf("drill: exit %d\n%s%s", code, out, stderr)
	}

	rewriteObject(t, s, objectKey("snapshots/"+res.Snapshot.Name), flipMiddle)
	code, out, stderr = invoke(t, env, "drill", "--json")
	if code != exitFailure {
		t.Fatalf("drill of a damaged snapshot: exit %d\n%s%s", code, out, stderr)
	}
	var failed drill.Result
	if err := json.Unmarshal([]byte(out), &failed); err != nil || failed.OK || !strings.Contains(failed.Error, res.Snapshot.Name) {
		t.Errorf("drill --json of a damaged snapshot: %v %s", err, out)
	}
	if strings.Contains(out+stderr, "S3CR3T") || strings.Contains(out+stderr, "/hc/d1") {
		t.Errorf("drill output holds a secret: %s%s", out, stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"/hc/d1/start", "/hc/d1", "/hc/d1/start", "/hc/d1", "/hc/d1/start", "/hc/d1", "/hc/d1/start", "/hc/d1/fail"}
	if strings.Join(pings, " ") != strings.Join(want, " ") {
		t.Errorf("pings %q, want %q (backup, two drills, the failed drill)", pings, want)
	}
}
