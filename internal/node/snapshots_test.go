package node_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/node"
	"github.com/vwstream/vwstream/internal/testenv"
)

// A scheduled snapshot uploads through the node's own store, so its requests
// and bytes show in /metrics under the target store like the replica's and the
// files'. Only a snapshot copies objects here (its -latest copy and sidecar).
// The snapshot pings HEALTHCHECK_PING_URL (/start, then success), its time is
// the snapshot's last success in /metrics, and the node's alerts are there.
func TestNode_ScheduledSnapshotInMetrics(t *testing.T) {
	s := testenv.NewS3(t)
	data := filepath.Join(t.TempDir(), "data")
	writtenVault(t, data, filepath.Join(t.TempDir(), "ledger"), 11, 20)
	addr := testenv.FreeAddr(t)
	pings := make(chan string, 4)
	hc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { pings <- r.Method + " " + r.URL.Path }))
	t.Cleanup(hc.Close)
	cfg := s3Config(t, s, data, "STATUS_ADDR="+addr, "BACKUP_ENABLED=true", "BACKUP_ON_STARTUP=true",
		"BACKUP_CRON=0 3 * * *", "GPG_PASSPHRASE=node snapshot passphrase", "HEALTHCHECK_PING_URL="+hc.URL+"/hc/uuid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := node.New(node.Options{Config: cfg})
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	waitReady(t, n, done)

	var size int64
	deadline := time.Now().Add(60 * time.Second)
	for size == 0 {
		if st := n.Status(); st.Snapshot != nil && st.Snapshot.LastName != "" {
			size = st.Snapshot.LastSize
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot within 60 s: %+v", n.Status().Snapshot)
		}
		time.Sleep(200 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`vwstream_store_bytes_total\{direction="up",store="target"\} ([0-9.e+]+)`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no upload bytes of the target store in /metrics:\n%s", body)
	}
	up, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	if int64(up) < size {
		t.Fatalf("/metrics counts %.0f bytes uploaded to the target, less than the %d-byte snapshot alone", up, size)
	}
	if !regexp.MustCompile(`vwstream_store_requests_total\{op="copy",store="target"\} [1-9]`).Match(body) {
		t.Fatalf("the snapshot's copies to -latest are not counted for the target store:\n%s", body)
	}
	for _, want := range []string{`vwstream_last_success_timestamp_seconds{kind="snapshot"} 1`, `vwstream_last_success_timestamp_seconds{kind="db"} 1`,
		`vwstream_alert_active{alert="snapshot_failed"} 0`, `vwstream_alert_active{alert="replication_stalled"} 0`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, want := range []string{"POST /hc/uuid/start", "POST /hc/uuid"} {
		select {
		case got := <-pings:
			if got != want {
				t.Errorf("ping %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("no ping %q", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
