package node_test

// Image updates of the container that mounts the node's data folder, run by
// the node that replicates it: a restore point before, the data put back
// after a rollback. Real Engine, real registry on loopback, real S3.

import (
	"context"
	"database/sql"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/node"
	"github.com/vwstream/vwstream/internal/restore"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/update"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// TestNode_UpdateRollbackPutsDataBack: v1 serves and writes, recording every
// commit in a ledger; v4 migrates the database (a new column, every row
// written) and never becomes healthy. The node's update pass takes a restore
// point, replaces v1 by v4, rolls back, and puts the database back before v1
// starts again. Then: v1 runs healthy on a database without the new column
// and keeps replicating; the replica's latest state is the put-back one with
// every committed transaction of v1, before and after the update; the
// abandoned migration is still restorable at its transaction; and the node
// starts again on the data folder (not refused as an older volume).
func TestNode_UpdateRollbackPutsDataBack(t *testing.T) {
	testenv.Docker(t)
	s := testenv.NewS3(t)
	reg := testenv.Registry(t)
	prefix := testenv.UniqueName(t)
	standIn := testenv.NewStandIn(t, prefix)
	imageID := map[string]string{
		"1": standIn.Image(prefix+":v1", "1", testenv.StandInHealthy, `["--ledger", "/ledger/ledger"]`),
		"4": standIn.Image(prefix+":v4", "4", testenv.StandInBroken, `["--migrate", "vw_next"]`),
	}
	ref := reg + "/" + prefix + "-vault:latest"
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", ref).Run() })
	push := func(ver string) {
		testenv.DockerRun(t, "tag", prefix+":v"+ver, ref)
		testenv.DockerRun(t, "push", "-q", ref)
	}

	work := t.TempDir()
	data, ledgerDir := filepath.Join(work, "data"), filepath.Join(work, "ledger")
	v, err := vaultsim.Create(data, vaultsim.Options{Seed: 13, Size: "small"})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	ledger := filepath.Join(ledgerDir, "ledger")
	push("1")
	name := prefix + "-vault"
	testenv.RemoveContainers(t, name, name+"-vwstream-previous")
	testenv.DockerRun(t, "run", "-d", "--name", name, "-v", data+":/data", "-v", ledgerDir+":/ledger",
		"--label", "vwstream.update=true", "--label", update.LabelScope+"="+prefix, ref) // protected because it mounts the data folder
	waitContainer(t, name, "healthy")

	cfg := s3Config(t, s, data, "UPDATE_ENABLED=true", "UPDATE_SCOPE="+prefix, "UPDATE_SCHEDULE=2", "UPDATE_HEALTH_TIMEOUT=30s",
		"UPDATE_STABLE_FOR=2s", "DOCKER_HOST=unix://"+testenv.DockerSocket, "GPG_PASSPHRASE=node snapshot passphrase")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	n := node.New(node.Options{Config: cfg, Logger: testLogger(t)})
	go func() { done <- n.Run(ctx) }()
	waitReady(t, n, done)
	time.Sleep(3 * time.Second) // v1 commits, replicated

	push("4")
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st := n.Status()
		if st.Updates != nil && (st.Updates.RolledBack > 0 || st.Updates.Failures > 0 || st.Updates.Updated > 0) {
			if st.Updates.RolledBack != 1 || st.Updates.Failures != 0 {
				out, _ := exec.Command("docker", "logs", name).CombinedOutput()
				t.Fatalf("update pass: %+v\n%s's log:\n%s", *st.Updates, name, out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no update within 3 minutes: %+v", st.Updates)
		}
		time.Sleep(200 * time.Millisecond)
	}
	problem := n.Status().Updates.LastProblem
	t.Logf("update report:\n%s", problem)
	for _, want := range []string{"took the restore point's snapshot", "restore point at transaction", "put the database back to transaction"} {
		if !strings.Contains(problem, want) {
			t.Fatalf("the report lacks %q:\n%s", want, problem)
		}
	}
	m := regexp.MustCompile(`transactions (\d+)\.\.(\d+) stay in the replica`).FindStringSubmatch(problem)
	if m == nil {
		t.Fatalf("the report names no abandoned transactions:\n%s", problem)
	}
	abandoned, _ := strconv.ParseUint(m[2], 10, 64)

	// v1 is back, healthy, under its name, on a database without the column.
	waitContainer(t, name, "healthy")
	if got := testenv.DockerRun(t, "inspect", "--format", "{{.Image}}", name); got != imageID["1"] {
		t.Fatalf("%s runs image %s, want v1 %s", name, got, imageID["1"])
	}
	if hasColumn(t, filepath.Join(data, vaultsim.DBName), "vw_next") {
		t.Fatal("the live database still has the new version's column")
	}
	time.Sleep(3 * time.Second) // v1 writes on the put-back database; the next passes hold v4 back
	if st := n.Status().Updates; st.Checks < 2 || !strings.Contains(st.LastProblem, "rolled back before") ||
		!strings.Contains(st.LastProblem, "put the database back to transaction") {
		t.Fatalf("after the passes that skip the rolled-back image, the status says %+v; want the hold-back reported with the rollback's report", *st)
	}
	testenv.DockerRun(t, "stop", name)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}

	// The replica's latest state is the put-back database plus v1's writes
	// since: every transaction v1 committed, before and after the update.
	rep := restoreAndVerify(t, cfg, ledger)
	if rep.LedgerEntries < 60 {
		t.Fatalf("only %d transactions were written; the test proves nothing", rep.LedgerEntries)
	}
	view, err := dataViewFor(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	latest := filepath.Join(t.TempDir(), "latest")
	res, err := restore.Replica(context.Background(), restore.Options{Store: view, Dir: latest})
	if err != nil {
		t.Fatal(err)
	}
	if hasColumn(t, res.Database, "vw_next") {
		t.Fatal("the replica's latest state has the abandoned migration")
	}
	// The abandoned migration stays restorable, at the transaction the report named.
	old := filepath.Join(t.TempDir(), "abandoned", vaultsim.DBName)
	if _, err := dbrepl.Restore(context.Background(), dbrepl.RestoreOptions{Store: view, OutputPath: old, TXID: abandoned}); err != nil {
		t.Fatalf("restore the abandoned transaction %d: %v", abandoned, err)
	}
	if !hasColumn(t, old, "vw_next") {
		t.Fatalf("transaction %d has no migrated column", abandoned)
	}

	// The data folder is this node's again on the next start.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	done2 := make(chan error, 1)
	n2 := node.New(node.Options{Config: cfg, Logger: testLogger(t)})
	go func() { done2 <- n2.Run(ctx2) }()
	waitReady(t, n2, done2)
	cancel2()
	if err := <-done2; err != nil {
		t.Fatalf("second run: %v", err)
	}
}

// waitContainer waits for a container's health status.
func waitContainer(t *testing.T, name, health string) {
	t.Helper()
	for i := 0; ; i++ {
		out := testenv.DockerRun(t, "inspect", "--format", "{{json .State}}", name)
		var st struct {
			Running bool
			Health  *struct{ Status string }
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatal(err)
		}
		if st.Running && st.Health != nil && st.Health.Status == health {
			return
		}
		if i > 600 {
			t.Fatalf("%s not %s: %s", name, health, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hasColumn reports whether the ciphers table of the database at path has column.
func hasColumn(t *testing.T, path, column string) bool {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pragma_table_info('ciphers') WHERE name = ?`, column).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}
