package dbrepl

import (
	"testing"
)

// TestReplicator_SurvivesKillS3 is TestReplicator_SurvivesKill against the S3
// test server (versitygw) instead of a local folder: SIGKILL at random moments
// while the workload writes, then a restore from the bucket holds every
// transaction committed more than (sync interval + 1 s) before the kill, as a
// gap-free prefix. It runs 5 cycles, 50 with VWSTREAM_SOAK=1;
// VWSTREAM_DBREPL_S3_CRASH_CYCLES sets the number.
func TestReplicator_SurvivesKillS3(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a child process")
	}
	t.Parallel() // overlaps with the outage tests, which mostly wait
	store, env := newS3(t, "vaultwarden")
	// The child reads the server's address and keys from the same
	// VWSTREAM_TEST_S3_* variables testenv used.
	killCycles(t, crashCycles(5, 50, "VWSTREAM_DBREPL_S3_CRASH_CYCLES"), t.TempDir(), store, "s3://"+env.Bucket+"/vaultwarden")
}
