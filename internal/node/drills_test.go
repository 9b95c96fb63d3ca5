package node_test

import (
	"context"
	"database/sql"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/node"
	"github.com/vwstream/vwstream/internal/status"
	"github.com/vwstream/vwstream/internal/testenv"
)

// waitTitle waits for a notification whose title holds want, skipping others.
func waitTitle(t *testing.T, got chan testenv.Notification, want string) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case m := <-got:
			if strings.Contains(m.Title, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no notification %q", want)
		}
	}
}

// DRILL_CRON runs restore drills in the node: with an intact replica and
// snapshot a drill passes and its duration is in the status document and
// /metrics; after a byte of every replica object is flipped in the S3
// server's own folder, the next drill fails, drill_failed is raised and
// notified, and readiness fails.
func TestNode_DrillPassesThenFailsOnDamage(t *testing.T) {
	srv := testenv.NewOwnS3(t)
	data := filepath.Join(t.TempDir(), "data")
	writtenVault(t, data, filepath.Join(t.TempDir(), "ledger"), 12, 20)
	addr := testenv.FreeAddr(t)
	hook, got := testenv.Webhook(t)
	n, stop := runDrillNode(t, srv, data, "STATUS_ADDR="+addr, "NOTIFICATION_URLS="+hook, "NOTIFICATION_LEVEL=info")
	drill := drillAfter(t, n, snapshotTime(t, n))
	if drill.LastResult != status.ResultOK || drill.LastDuration <= 0 {
		t.Fatalf("drill of an intact replica and snapshot: %+v", drill)
	}
	waitTitle(t, got, "vwstream drill ok: vaultwarden-") // the title names the snapshot drilled
	metrics := scrape(t, addr)
	for _, want := range []string{"vwstream_drill_last_ok 1", `vwstream_last_success_timestamp_seconds{kind="drill"} 1`, "vwstream_drill_duration_seconds "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	damaged := flipReplicaBytes(t, srv.Dir())
	t.Logf("flipped a byte in %d replica objects", damaged)
	damagedAt := time.Now()
	waitDoc(t, n, "a failed drill", func(s status.Status) bool {
		return s.Drill != nil && s.Drill.LastTime.After(damagedAt) && s.Drill.LastResult == status.ResultError
	})
	waitTitle(t, got, "vwstream alert drill_failed: critical")
	st := n.Status()
	if len(st.Alerts) == 0 || st.Alerts[len(st.Alerts)-1].Name != "drill_failed" {
		t.Errorf("status alerts %+v lack drill_failed", st.Alerts)
	}
	metrics = scrape(t, addr)
	for _, want := range []string{"vwstream_drill_last_ok 0", `vwstream_alert_active{alert="drill_failed"} 1`, "vwstream_ready 0"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	stop()
}

// runDrillNode runs a node on data with a snapshot at start and a drill every
// 2 s; stop ends it and fails the test when Run failed.
func runDrillNode(t *testing.T, srv *testenv.OwnS3, data string, extra ...string) (n *node.Node, stop func()) {
	t.Helper()
	cfg := s3Config(t, srv.Env, data, append(extra, "BACKUP_ENABLED=true", "BACKUP_ON_STARTUP=true",
		"BACKUP_CRON=0 3 * * *", "GPG_PASSPHRASE=drill passphrase", "DRILL_CRON=@every 2s")...)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	n = node.New(node.Options{Config: cfg, Logger: testLogger(t)})
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	waitReady(t, n, done)
	return n, func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run: %v", err)
		}
	}
}

// snapshotTime waits for the node's first snapshot and returns its time.
func snapshotTime(t *testing.T, n *node.Node) time.Time {
	t.Helper()
	var at time.Time
	waitDoc(t, n, "a snapshot", func(s status.Status) bool {
		if s.Snapshot != nil && s.Snapshot.LastName != "" {
			at = s.Snapshot.LastTime
			return true
		}
		return false
	})
	return at
}

// drillAfter waits for a drill that ended after at and returns its record.
func drillAfter(t *testing.T, n *node.Node, at time.Time) status.Drill {
	t.Helper()
	var d status.Drill
	waitDoc(t, n, "a drill after "+at.Format(time.StampMilli), func(s status.Status) bool {
		if s.Drill != nil && s.Drill.LastTime.After(at) {
			d = *s.Drill
			return true
		}
		return false
	})
	return d
}

// waitDoc polls the node's status document until cond holds.
func waitDoc(t *testing.T, n *node.Node, what string, cond func(status.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond(n.Status()) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 2 minutes: %+v", what, n.Status())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// flipReplicaBytes damages every object under db/ in versitygw's posix
// folder: one byte in the middle, inverted, the size unchanged.
func flipReplicaBytes(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(filepath.ToSlash(path), "/db/") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil || len(b) == 0 {
			return err
		}
		b[len(b)/2] ^= 0xff
		n++
		return os.WriteFile(path, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no replica object under %s", dir)
	}
	return n
}

// A drill tells a backup that lost a file from a vault caught mid-upload.
// Vaultwarden inserts an attachment row before it writes the file, so a row
// without its file in the data folder too is the vault as it is: the replica
// and a snapshot taken then restore it as recorded, and the drill passes
// (before, every drill failed until the upload ended, and an abandoned upload
// kept drill_failed up for good). An attachment whose object went missing from
// the bucket while the data folder holds it has the drill let file sync
// upload it again, and pass once the replica holds it.
func TestNode_DrillPassesWithAnUnfinishedUpload(t *testing.T) {
	srv := testenv.NewOwnS3(t)
	data := filepath.Join(t.TempDir(), "data")
	writtenVault(t, data, filepath.Join(t.TempDir(), "ledger"), 14, 10)
	db, err := sql.Open("sqlite", filepath.Join(data, "db.sqlite3"))
	if err != nil {
		t.Fatal(err)
	}
	const unfinished = "00000000000000000000"
	if _, err := db.Exec(`INSERT INTO attachments (id, cipher_uuid, file_name, file_size, akey)
		SELECT ?, uuid, 'upload.bin', 4096, 'k' FROM ciphers ORDER BY uuid LIMIT 1`, unfinished); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	n, stop := runDrillNode(t, srv, data)
	if d := drillAfter(t, n, snapshotTime(t, n)); d.LastResult != status.ResultOK {
		t.Fatalf("drill of a vault with an upload in progress: %+v", d)
	}

	// One attachment's object removed from the S3 server's folder: the data
	// folder still holds the file.
	var removed string
	err = filepath.WalkDir(srv.Dir(), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || removed != "" || !strings.Contains(filepath.ToSlash(path), "/files/attachments/") {
			return err
		}
		removed = path
		return os.Remove(path)
	})
	if err != nil || removed == "" {
		t.Fatalf("no attachment object to remove under %s (%v)", srv.Dir(), err)
	}
	// The first drill to end may have restored the files before the removal:
	// the one after it started after.
	d := drillAfter(t, n, time.Now())
	if d = drillAfter(t, n, d.LastTime); d.LastResult != status.ResultOK {
		t.Fatalf("drill after an attachment object went missing: %+v", d)
	}
	if _, err := os.Stat(removed); err != nil {
		t.Errorf("the drill passed but the attachment object was not uploaded again: %v", err)
	}
	stop()
}
