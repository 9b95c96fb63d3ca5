package node_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/node"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// bucketListing lists every object of the bucket with its ETag, to tell
// whether anything was written.
func bucketListing(t *testing.T, s testenv.S3) string {
	t.Helper()
	out, err := s.Client().ListObjectsV2(context.Background(), listInput(s.Bucket))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, o := range out.Contents {
		lines = append(lines, fmt.Sprintf("%s %s", *o.Key, *o.ETag))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestNode_SecondaryFollowsAndPromotes: a persistent secondary pulls what the
// primary writes, never writes to the bucket itself, and after the primary
// stopped, promote makes it the primary with everything the old one flushed.
func TestNode_SecondaryFollowsAndPromotes(t *testing.T) {
	s := testenv.NewS3(t)
	work := t.TempDir()
	dataA, dataB := filepath.Join(work, "a"), filepath.Join(work, "b")
	v, err := vaultsim.Create(dataA, vaultsim.Options{Seed: 11, Size: "small"})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ledger := filepath.Join(work, "ledger")
	base := []string{"LEASE_TTL=3s", "LEASE_RENEW_INTERVAL=1s", "SECONDARY_SYNC_INTERVAL=1s", "HEALTHCHECK_MAX_SYNC_AGE=600"}
	cfgA := s3Config(t, s, dataA, append(base, "STATUS_ADDR="+testenv.FreeAddr(t), "STATUS_FILE="+filepath.Join(work, "a.json"))...)
	cfgB := s3Config(t, s, dataB, append(base, "NODE_ROLE=secondary", "STATUS_ADDR="+testenv.FreeAddr(t), "STATUS_FILE="+filepath.Join(work, "b.json"))...)

	// The primary replicates while the workload writes.
	ctxA, stopA := context.WithCancel(context.Background())
	a := node.New(node.Options{Config: cfgA, Logger: testLogger(t)})
	doneA := make(chan error, 1)
	go func() { doneA <- a.Run(ctxA) }()
	waitReady(t, a, doneA)
	workCtx, stopWork := context.WithCancel(context.Background())
	workDone := make(chan error, 1)
	go func() {
		_, err := vaultsim.NewWorkload(v, vaultsim.WorkloadOptions{Rate: 50, Ledger: ledger, AttachmentRatio: 0.1}).Run(workCtx)
		workDone <- err
	}()
	time.Sleep(1500 * time.Millisecond)

	// The secondary starts from an empty folder and follows.
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	b := node.New(node.Options{Config: cfgB, Logger: testLogger(t)})
	doneB := make(chan error, 1)
	go func() { doneB <- b.Run(ctxB) }()
	waitReady(t, b, doneB)
	first := countSeqs(t, filepath.Join(dataB, "db.sqlite3"))
	time.Sleep(3 * time.Second)
	if later := countSeqs(t, filepath.Join(dataB, "db.sqlite3")); later <= first {
		t.Fatalf("secondary did not follow: %d transactions, then %d", first, later)
	}

	// Stop the writer and the primary (graceful: it flushes and releases).
	stopWork()
	if err := <-workDone; err != nil && err != context.Canceled {
		t.Fatal(err)
	}
	stopA()
	if err := <-doneA; err != nil {
		t.Fatalf("primary: %v", err)
	}

	// The secondary alone writes nothing: two pulls later the bucket is the same.
	before := bucketListing(t, s)
	time.Sleep(2500 * time.Millisecond)
	if after := bucketListing(t, s); after != before {
		t.Fatalf("the secondary wrote to the bucket:\nbefore\n%s\nafter\n%s", before, after)
	}

	if err := b.Promote(context.Background(), false); err != nil {
		t.Fatalf("promote: %v", err)
	}
	st := b.Status()
	if st.Role != config.RolePrimary || st.Lease == nil || !st.Lease.Ours {
		t.Fatalf("after promote: role %q, lease %+v", st.Role, st.Lease)
	}
	// Everything the old primary flushed is in the promoted node's data folder.
	if rep, err := vaultsim.Verify(filepath.Join(dataB, "db.sqlite3"), ledger, time.Now()); err != nil {
		t.Fatalf("promoted data: %v (%+v)", err, rep)
	}
	stopB()
	if err := <-doneB; err != nil {
		t.Fatalf("promoted node: %v", err)
	}
	// And the replica the new primary leaves behind has it all too.
	restoreAndVerify(t, cfgB, ledger)
	if _, err := os.Stat(filepath.Join(dataB, "attachments")); err != nil {
		t.Errorf("secondary pulled no attachments: %v", err)
	}
}
