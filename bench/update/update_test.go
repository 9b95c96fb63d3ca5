// Package update_test measures image updates as a user runs them: `vwstream
// run` beside the Vaultwarden stand-in (a container labelled
// vwstream.update=true and vwstream.protected=true, writing to a 100 MB
// database on the shared data folder), a registry on loopback behind a
// counting proxy, and four releases pushed in turn:
//
//	v2  healthy: updated (restore point, stop, replace, healthy)
//	v3  never healthy, no schema change: rolled back, nothing to put back
//	v4  migrates the database, never healthy: rolled back with the data put back
//
// It reports each one's downtime (old container stopped to a container
// serving again, as the update report gives it) and the registry requests
// of vwstream's checks per container and pass. It is opt-in:
//
//	VWSTREAM_BENCH=1 go test ./bench/update -run TestUpdateDowntime -v -timeout 30m
//
// Results are recorded in RESULTS.md.
package update_test

import (
	"encoding/json"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

func TestUpdateDowntime(t *testing.T) {
	if os.Getenv("VWSTREAM_BENCH") != "1" {
		t.Skip("set VWSTREAM_BENCH=1 to run the benchmark")
	}
	testenv.Docker(t)
	s := testenv.NewS3(t)
	reg := testenv.Registry(t)
	prefix := testenv.UniqueName(t)

	// The counting proxy: what vwstream asks (Go's client), apart from what
	// the Engine pushes and pulls.
	var checks atomic.Int64
	target, _ := url.Parse("http://" + reg)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxyAddr := testenv.FreeAddr(t)
	srv := &http.Server{Addr: proxyAddr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.UserAgent(), "docker") {
			checks.Add(1)
		}
		proxy.ServeHTTP(w, r)
	})}
	go func() { _ = srv.ListenAndServe() }()
	t.Cleanup(func() { _ = srv.Close() })

	standIn := testenv.NewStandIn(t, prefix)
	ledgerArgs := `["--ledger", "/ledger/ledger"]`
	standIn.Image(prefix+":v1", "1", testenv.StandInHealthy, ledgerArgs)
	standIn.Image(prefix+":v2", "2", testenv.StandInHealthy, ledgerArgs)
	standIn.Image(prefix+":v3", "3", testenv.StandInBroken, `[]`)
	standIn.Image(prefix+":v4", "4", testenv.StandInBroken, `["--migrate", "vw_next"]`)
	ref := proxyAddr + "/" + prefix + "-vault:latest"
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", ref).Run() })
	push := func(ver string) {
		testenv.DockerRun(t, "tag", prefix+":v"+ver, ref)
		testenv.DockerRun(t, "push", "-q", ref)
	}

	work, err := os.MkdirTemp("/var/tmp", "vwstream-bench-update-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	data, ledger := filepath.Join(work, "data"), filepath.Join(work, "ledger")
	v, err := vaultsim.Create(data, vaultsim.Options{Seed: 1, Size: vaultsim.SizeLarge, Ciphers: 44000, Events: 66000})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	fi, err := os.Stat(filepath.Join(data, vaultsim.DBName))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("database: %.1f MB", float64(fi.Size())/1e6)

	push("1")
	name := prefix + "-vault"
	testenv.RemoveContainers(t, name, name+"-vwstream-previous")
	testenv.DockerRun(t, "run", "-d", "--name", name, "-v", data+":/data", "-v", ledger+":/ledger",
		"--label", "vwstream.update=true", "--label", "vwstream.protected=true", "--label", "vwstream.update.scope="+prefix, ref)

	vw := testenv.Binaries(t, "github.com/vwstream/vwstream/cmd/vwstream")[0]
	statusFile := filepath.Join(work, "status.json")
	cmd := exec.Command(vw, "run")
	cmd.Env = append(os.Environ(), "DATA_FOLDER="+data, "STATUS_ADDR=off", "STATUS_FILE="+statusFile,
		"S3_BUCKET="+s.Bucket, "S3_ENDPOINT="+s.Endpoint, "S3_REGION="+s.Region,
		"S3_ACCESS_KEY_ID="+s.AccessKey, "S3_SECRET_ACCESS_KEY="+s.SecretKey,
		"ENCRYPTION_PASSPHRASE=bench bucket passphrase", "GPG_PASSPHRASE=bench snapshot passphrase",
		"UPDATE_ENABLED=true", "UPDATE_SCOPE="+prefix, "UPDATE_SCHEDULE=3", "UPDATE_HEALTH_TIMEOUT=60s",
		"DOCKER_HOST=unix://"+testenv.DockerSocket)
	var logs testenv.SyncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("vwstream:\n%s", logs.String())
		}
	})

	type updates struct {
		Checks     int64  `json:"checks"`
		Updated    int64  `json:"updated"`
		RolledBack int64  `json:"rolled_back"`
		Failures   int64  `json:"failures"`
		Problem    string `json:"last_problem"`
	}
	read := func() updates {
		var st struct {
			Updates *updates `json:"updates"`
		}
		b, _ := os.ReadFile(statusFile)
		if json.Unmarshal(b, &st) != nil || st.Updates == nil {
			return updates{}
		}
		return *st.Updates
	}
	wait := func(what string, ok func(updates) bool) updates {
		deadline := time.Now().Add(10 * time.Minute)
		for {
			if u := read(); ok(u) {
				return u
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 minutes: %+v\n%s", what, read(), logs.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// Requests per check: passes over an unchanged tag.
	first := wait("first checks", func(u updates) bool { return u.Checks >= 1 })
	c0, r0 := first.Checks, checks.Load()
	later := wait("more checks", func(u updates) bool { return u.Checks >= c0+5 })
	perCheck := float64(checks.Load()-r0) / float64(later.Checks-c0)

	downtime := regexp.MustCompile(`(\d+\.\d) s without service`)
	figure := func(text string) float64 {
		m := downtime.FindAllStringSubmatch(text, -1)
		if m == nil {
			t.Fatalf("no downtime in %q", text)
		}
		f, _ := strconv.ParseFloat(m[len(m)-1][1], 64)
		return f
	}

	// The pass's report, from vwstream's log: the status keeps only the
	// last pass's problems, and a later pass may have cleared them.
	report := func(version, action string) string {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "image update: ") && strings.Contains(l, "): "+action) && strings.Contains(l, "(version "+version+")\\n  - ") {
				return l
			}
		}
		return ""
	}
	push("2")
	wait("v2", func(u updates) bool { return u.Updated >= 1 })
	upd := figure(report("2", "updated"))

	push("3")
	wait("v3", func(u updates) bool { return u.RolledBack >= 1 })
	r3 := report("3", "rolled-back")
	if !strings.Contains(r3, "did not change since the restore point") {
		t.Fatalf("v3 rollback: %s", r3)
	}
	rb := figure(r3)

	push("4")
	wait("v4", func(u updates) bool { return u.RolledBack >= 2 })
	r4 := report("4", "rolled-back")
	if !strings.Contains(r4, "put the database back") {
		t.Fatalf("v4 rollback: %s", r4)
	}
	putBack := figure(r4)

	t.Logf("registry requests per container check: %.2f (%d checks)", perCheck, later.Checks-c0)
	t.Logf("downtime: update v1->v2 %.1f s; rollback v2->v3 (data unchanged) %.1f s; rollback v2->v4 with the database put back %.1f s",
		upd, rb, putBack)
	t.Logf("v4 report: %s", r4)
}
