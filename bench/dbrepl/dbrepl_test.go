// Package dbrepl_test compares vwstream's database replication (internal/dbrepl,
// the embedded litestream engine behind vwstream's tuning, sealed objects) with
// the stock `litestream replicate` v0.5.18 CLI, side by side in one run on the
// same S3 server (see README.md). It runs only when asked:
//
//	VWSTREAM_BENCH=1 scripts/test -run TestBench -v ./bench/dbrepl
//
// and rewrites RESULTS.md. Benchmarks report; they never fail on timings.
package dbrepl_test

import (
	"bufio"
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

const resultFile = "RESULTS.md"

var quiet = slog.New(slog.DiscardHandler)

// knobs: every figure's size can be changed from the environment.
type knobs struct {
	lagSamples int           // VWSTREAM_BENCH_LAG_SAMPLES, commits timed
	lagSpacing time.Duration // between them
	txCount    int64         // VWSTREAM_BENCH_TX, transactions of the busy phase
	settle     time.Duration // VWSTREAM_BENCH_SETTLE, after writes stop, before idle counting starts
	idle       time.Duration // VWSTREAM_BENCH_IDLE, idle window counted
	restoreMB  int           // VWSTREAM_BENCH_RESTORE_MB, database size to restore
	restores   int           // VWSTREAM_BENCH_RESTORES, restores per side (alternating); the median is reported

	restoreOnly bool // VWSTREAM_BENCH_ONLY=restore: only the restore phase (a quick re-run of that figure)

	loadStart, loadRestore string // load averages, for the report
}

func loadKnobs(t *testing.T) knobs {
	k := knobs{lagSamples: 50, lagSpacing: 1500 * time.Millisecond, txCount: 1000,
		settle: 90 * time.Second, idle: 120 * time.Second, restoreMB: 200, restores: 3}
	if v := os.Getenv("VWSTREAM_BENCH_LAG_SAMPLES"); v != "" {
		k.lagSamples, _ = strconv.Atoi(v)
	}
	if v := os.Getenv("VWSTREAM_BENCH_TX"); v != "" {
		k.txCount, _ = strconv.ParseInt(v, 10, 64)
	}
	if v := os.Getenv("VWSTREAM_BENCH_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("VWSTREAM_BENCH_IDLE=%q: %v", v, err)
		}
		k.idle = d
	}
	if v := os.Getenv("VWSTREAM_BENCH_SETTLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("VWSTREAM_BENCH_SETTLE=%q: %v", v, err)
		}
		k.settle = d
	}
	if v := os.Getenv("VWSTREAM_BENCH_RESTORE_MB"); v != "" {
		k.restoreMB, _ = strconv.Atoi(v)
	}
	switch v := os.Getenv("VWSTREAM_BENCH_ONLY"); v {
	case "":
	case "restore":
		k.restoreOnly = true
	default:
		t.Fatalf("VWSTREAM_BENCH_ONLY=%q: want restore", v)
	}
	if v := os.Getenv("VWSTREAM_BENCH_RESTORES"); v != "" {
		k.restores, _ = strconv.Atoi(v)
	}
	if k.lagSamples < 2 || k.txCount < 1 || k.idle <= 0 || k.restoreMB < 1 || k.restores < 1 {
		t.Fatalf("bad benchmark knobs: %+v", k)
	}
	return k
}

// sideResult is what one side measured.
type sideResult struct {
	lags        []time.Duration
	lagRequests testenv.Counts // during the lag phase
	txRequests  testenv.Counts // during the busy phase and its catch-up
	txElapsed   time.Duration
	idle        testenv.Counts
	upload      time.Duration // initial upload of the big database
	restores    []time.Duration
}

func TestBench_VwstreamVsLitestream(t *testing.T) {
	if os.Getenv("VWSTREAM_BENCH") == "" {
		t.Skip("set VWSTREAM_BENCH=1 to run the replication benchmark")
	}
	k := loadKnobs(t)
	k.loadStart = testenv.LoadAverage()
	if raceEnabled {
		t.Log("built with -race: the restore timings include the race detector's cost (scripts/test -race=false leaves it out)")
	}
	s := testenv.NewS3(t)
	litestreamBin(t)
	key, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	results := map[string]*sideResult{"vwstream": {}, "litestream": {}}
	if k.restoreOnly {
		k.loadRestore = testenv.LoadAverage()
		restoreBench(t, s, k, key, work, results)
		reportRestore(t, k, results)
		return
	}

	// Two identical Vaultwarden-shaped databases, one per side, with a table
	// the lag probe writes to.
	dirs := map[string]string{}
	for name := range results {
		dir := filepath.Join(work, name)
		v, err := vaultsim.Create(dir, vaultsim.Options{Seed: 1, Size: vaultsim.SizeMedium})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.DB.Exec(`CREATE TABLE bench_commits (id INTEGER PRIMARY KEY, at TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
		dirs[name] = dir
	}
	sides := []*side{
		startVwstream(t, s, filepath.Join(dirs["vwstream"], vaultsim.DBName), "vw", key),
		startLitestream(t, s, filepath.Join(dirs["litestream"], vaultsim.DBName), "ls"),
	}
	client := s.Client()
	ctx := context.Background()
	for _, sd := range sides {
		waitL0(t, s, sd, 0, 60*time.Second)
		sd.proxy.Take()
	}
	t.Logf("both sides replicating; lag phase: %d commits %v apart", k.lagSamples, k.lagSpacing)

	// (a) commit -> durable: one transaction, then poll the bucket directly
	// until a level-0 object beyond the previous maximum appears.
	var wg sync.WaitGroup
	for _, sd := range sides {
		res := results[sd.name]
		wg.Go(func() {
			db, err := sql.Open("sqlite", "file:"+sd.dbPath+"?_pragma=busy_timeout(10000)")
			if err != nil {
				t.Error(err)
				return
			}
			defer db.Close()
			start := time.Now()
			for i := range k.lagSamples {
				time.Sleep(time.Until(start.Add(time.Duration(i) * k.lagSpacing)))
				prev, err := maxL0(ctx, s, client, sd.l0)
				if err != nil {
					t.Error(err)
					return
				}
				t0 := time.Now()
				if _, err := db.Exec(`INSERT INTO bench_commits (at) VALUES (?)`, t0.Format(time.RFC3339Nano)); err != nil {
					t.Error(err)
					return
				}
				for {
					cur, err := maxL0(ctx, s, client, sd.l0)
					if err != nil {
						t.Error(err)
						return
					}
					if cur > prev {
						break
					}
					if time.Since(t0) > 30*time.Second {
						t.Errorf("%s: commit %d not durable after 30s", sd.name, i)
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
				res.lags = append(res.lags, time.Since(t0))
			}
			time.Sleep(3 * time.Second) // the last upload's stragglers
			res.lagRequests = sd.proxy.Take()
			t.Logf("%s: slowest commits %s", sd.name, slowest(res.lags, 3))
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// (b1) requests per committed transactions: a Vaultwarden-shaped burst.
	for _, sd := range sides {
		res := results[sd.name]
		wg.Go(func() {
			v, err := vaultsim.Open(filepath.Dir(sd.dbPath))
			if err != nil {
				t.Error(err)
				return
			}
			defer v.Close()
			w := vaultsim.NewWorkload(v, vaultsim.WorkloadOptions{Rate: 100, Burst: 5, Writers: 2, Count: k.txCount,
				Seed: 5, AttachmentRatio: -1, SendRatio: -1})
			start := time.Now()
			if _, err := w.Run(ctx); err != nil {
				t.Error(err)
				return
			}
			res.txElapsed = time.Since(start)
			time.Sleep(5 * time.Second) // catch up
			res.txRequests = sd.proxy.Take()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// (b2) idle: after the one-off work once writes stop (the time-based
	// checkpoint after a minute and its LTX file, L1 compaction at the next
	// 30 s boundary), count a quiet window.
	t.Logf("idle phase: settle %v, count %v", k.settle, k.idle)
	time.Sleep(k.settle)
	for _, sd := range sides {
		sd.proxy.Take()
	}
	time.Sleep(k.idle)
	for _, sd := range sides {
		results[sd.name].idle = sd.proxy.Take()
		sd.stop(t)
	}

	// (c) restore of a large database, each side from its own replica.
	k.loadRestore = testenv.LoadAverage()
	restoreBench(t, s, k, key, work, results)
	report(t, k, results)
}

// waitL0 waits until the side has a level-0 object beyond after.
func waitL0(t *testing.T, s testenv.S3, sd *side, after uint64, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		cur, err := maxL0(context.Background(), s, s.Client(), sd.l0)
		if err == nil && uint64(cur) > after {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: nothing replicated under %s after %v (err %v)", sd.name, sd.l0, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// makeBigDB writes a WAL-mode database of about mb megabytes: a table of 4 KB
// rows, half random bytes and half a repeated pattern (vault rows are
// encrypted strings; their base64 compresses a little).
func makeBigDB(t *testing.T, path string, mb int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE big (id INTEGER PRIMARY KEY, b BLOB NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	rows := mb * 256 // 4 KB each
	for done := 0; done < rows; done += 5000 {
		n := min(5000, rows-done)
		if _, err := db.Exec(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < ?)
			INSERT INTO big (b) SELECT randomblob(2000) || zeroblob(2000) FROM c`, n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// checksum summarises the big table, to check both restores got it all.
func checksum(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, size int64
	if err := db.QueryRow(`SELECT count(*), sum(length(b)) FROM big`).Scan(&n, &size); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return fmt.Sprintf("%d rows, %d bytes", n, size)
}

func restoreBench(t *testing.T, s testenv.S3, k knobs, key *seal.Key, work string, results map[string]*sideResult) {
	ctx := context.Background()
	src := filepath.Join(work, "big-src.sqlite3")
	start := time.Now()
	makeBigDB(t, src, k.restoreMB)
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	want := checksum(t, src)
	t.Logf("restore phase: %.0f MB database (%s) built in %v", float64(fi.Size())/1e6, want, time.Since(start).Round(time.Second))

	// Upload: vwstream replicates until Sync confirms; litestream -once.
	vwDB := filepath.Join(work, "vw-big", "db.sqlite3")
	lsDB := filepath.Join(work, "ls-big", "db.sqlite3")
	copyFile(t, src, vwDB)
	copyFile(t, src, lsDB)
	vwData := vwStore(t, s, s.Endpoint, "vw-big", key)
	start = time.Now()
	r, err := dbrepl.New(dbrepl.Options{DBPath: vwDB, Store: vwData, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	results["vwstream"].upload = time.Since(start)

	cfg := litestreamConfig(t, s, s.Endpoint, lsDB, "ls-big")
	start = time.Now()
	cmd := exec.Command(litestreamBin(t), "replicate", "-once", "-config", cfg)
	cmd.Env = litestreamEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("litestream replicate -once: %v\n%s", err, out)
	}
	results["litestream"].upload = time.Since(start)

	// Restore, alternating sides, k.restores times each.
	for round := range k.restores {
		out := filepath.Join(work, fmt.Sprintf("vw-restore-%d", round), "db.sqlite3")
		start := time.Now()
		if _, err := dbrepl.Restore(ctx, dbrepl.RestoreOptions{Store: vwData, OutputPath: out, Logger: quiet}); err != nil {
			t.Fatalf("vwstream restore: %v", err)
		}
		results["vwstream"].restores = append(results["vwstream"].restores, time.Since(start))
		if got := checksum(t, out); got != want {
			t.Errorf("vwstream restore: %s, want %s", got, want)
		}
		_ = os.RemoveAll(filepath.Dir(out))

		out = filepath.Join(work, fmt.Sprintf("ls-restore-%d", round), "db.sqlite3")
		start = time.Now()
		cmd := exec.Command(litestreamBin(t), "restore", "-config", cfg, "-o", out, lsDB)
		cmd.Env = litestreamEnv()
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("litestream restore: %v\n%s", err, b)
		}
		results["litestream"].restores = append(results["litestream"].restores, time.Since(start))
		if got := checksum(t, out); got != want {
			t.Errorf("litestream restore: %s, want %s", got, want)
		}
		_ = os.RemoveAll(filepath.Dir(out))
	}
}

func secs(d []time.Duration) string {
	var parts []string
	for _, x := range d {
		parts = append(parts, fmt.Sprintf("%.2f", x.Seconds()))
	}
	return strings.Join(parts, ", ") + " s"
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1)*p + 0.5)
	return s[min(i, len(s)-1)]
}

func perHour(n testenv.Counts, window time.Duration) float64 {
	return float64(n.Total()) * float64(time.Hour) / float64(window)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func onOff(b bool) string {
	if b {
		return "on (timings of the in-process side inflated)"
	}
	return "off"
}

func machine() string {
	model := runtime.GOARCH
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if name, val, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(name) == "model name" {
				model = strings.TrimSpace(val)
				break
			}
		}
		_ = f.Close()
	}
	return fmt.Sprintf("%s/%s, %d CPUs (%s), %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), model, runtime.Version())
}

// reportRestore logs the restore figures of a VWSTREAM_BENCH_ONLY=restore run
// (RESULTS.md is left as it is: its other figures were not measured).
func reportRestore(t *testing.T, k knobs, results map[string]*sideResult) {
	vw, ls := results["vwstream"], results["litestream"]
	med := func(d []time.Duration) float64 { return percentile(d, .5).Seconds() }
	t.Logf("restore of the %d MB database, median of %d: vwstream %.2f s, litestream %.2f s, ratio %s; runs: vwstream %s, litestream %s; initial upload: vwstream %.1f s, litestream %.1f s; race detector %s; load average %s before the restores, %s at the end",
		k.restoreMB, k.restores, med(vw.restores), med(ls.restores), ratio(med(vw.restores), med(ls.restores)),
		secs(vw.restores), secs(ls.restores), vw.upload.Seconds(), ls.upload.Seconds(), onOff(raceEnabled), k.loadRestore, testenv.LoadAverage())
}

func report(t *testing.T, k knobs, results map[string]*sideResult) {
	vw, ls := results["vwstream"], results["litestream"]
	sec := func(d time.Duration) float64 { return d.Seconds() }
	minOf := func(d []time.Duration) time.Duration { return slices.Min(d) }
	lagWindow := time.Duration(k.lagSamples)*k.lagSpacing + 3*time.Second

	var b strings.Builder
	fmt.Fprintf(&b, "# Database replication: vwstream vs stock litestream\n\n")
	fmt.Fprintf(&b, "Written by `VWSTREAM_BENCH=1 scripts/test -race=false -run TestBench -v ./bench/dbrepl` (see README.md).\n\n")
	fmt.Fprintf(&b, "- date: %s\n- machine: %s, race detector %s\n- server: versitygw (posix) on loopback; each side through its own counting proxy\n", time.Now().UTC().Format(time.RFC3339), machine(), onOff(raceEnabled))
	fmt.Fprintf(&b, "- vwstream: internal/dbrepl defaults (sync 1 s, L0 retention check 1 h), sealed with age\n- litestream: stock v0.5.18 `litestream replicate`, defaults (sync 1 s), unencrypted\n\n")
	fmt.Fprintf(&b, "| figure | vwstream | litestream | ratio vw/ls | target |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| lag commit→durable p50 (%d commits) | %.3f s | %.3f s | %s | |\n", k.lagSamples,
		sec(percentile(vw.lags, .5)), sec(percentile(ls.lags, .5)), ratio(sec(percentile(vw.lags, .5)), sec(percentile(ls.lags, .5))))
	fmt.Fprintf(&b, "| lag commit→durable p99 | %.3f s | %.3f s | %s | ≤ 1.5 s and ≤ litestream |\n",
		sec(percentile(vw.lags, .99)), sec(percentile(ls.lags, .99)), ratio(sec(percentile(vw.lags, .99)), sec(percentile(ls.lags, .99))))
	fmt.Fprintf(&b, "| lag max | %.3f s | %.3f s | | |\n", sec(slices.Max(vw.lags)), sec(slices.Max(ls.lags)))
	fmt.Fprintf(&b, "| requests per idle hour (from %v idle, after %v settle) | %.0f | %.0f | %s | ≤ 48 |\n", k.idle, k.settle,
		perHour(vw.idle, k.idle), perHour(ls.idle, k.idle), ratio(perHour(vw.idle, k.idle), perHour(ls.idle, k.idle)))
	vwTx, lsTx := float64(vw.txRequests.Total())*1000/float64(k.txCount), float64(ls.txRequests.Total())*1000/float64(k.txCount)
	fmt.Fprintf(&b, "| requests per 1000 tx, burst (%d tx at ~100/s) | %.0f | %.0f | %s | |\n", k.txCount, vwTx, lsTx, ratio(vwTx, lsTx))
	vwLag, lsLag := float64(vw.lagRequests.Total())*1000/float64(k.lagSamples), float64(ls.lagRequests.Total())*1000/float64(k.lagSamples)
	fmt.Fprintf(&b, "| requests per 1000 tx, sparse (1 tx every %v) | %.0f | %.0f | %s | |\n", k.lagSpacing, vwLag, lsLag, ratio(vwLag, lsLag))
	fmt.Fprintf(&b, "| initial upload of the %d MB database | %.1f s | %.1f s | %s | |\n", k.restoreMB,
		sec(vw.upload), sec(ls.upload), ratio(sec(vw.upload), sec(ls.upload)))
	fmt.Fprintf(&b, "| restore of the %d MB database (median of %d) | %.2f s | %.2f s | %s | ≤ 1.0 |\n", k.restoreMB, len(vw.restores),
		sec(percentile(vw.restores, .5)), sec(percentile(ls.restores, .5)), ratio(sec(percentile(vw.restores, .5)), sec(percentile(ls.restores, .5))))
	fmt.Fprintf(&b, "| restore, best of %d | %.2f s | %.2f s | %s | |\n", len(vw.restores),
		sec(minOf(vw.restores)), sec(minOf(ls.restores)), ratio(sec(minOf(vw.restores)), sec(minOf(ls.restores))))
	fmt.Fprintf(&b, "\nRequests by kind:\n\n")
	fmt.Fprintf(&b, "- idle %v: vwstream %s; litestream %s\n", k.idle, vw.idle.String(), ls.idle.String())
	fmt.Fprintf(&b, "- burst of %d tx (+5 s catch-up; vwstream took %v, litestream %v): vwstream %s; litestream %s\n", k.txCount,
		vw.txElapsed.Round(time.Millisecond), ls.txElapsed.Round(time.Millisecond), vw.txRequests.String(), ls.txRequests.String())
	fmt.Fprintf(&b, "- lag phase, %d commits in %v (the probe's own LISTs go to the server directly, uncounted): vwstream %s; litestream %s\n",
		k.lagSamples, lagWindow.Round(time.Second), vw.lagRequests.String(), ls.lagRequests.String())
	fmt.Fprintf(&b, "- restore runs (alternating, vwstream first): vwstream %s; litestream %s (vwstream's includes PRAGMA integrity_check and age decryption)\n",
		secs(vw.restores), secs(ls.restores))
	fmt.Fprintf(&b, "- load average (1, 5, 15 min): %s at the start, %s before the restores, %s at the end\n", k.loadStart, k.loadRestore, testenv.LoadAverage())
	t.Log("\n" + b.String())
	if err := os.WriteFile(resultFile, []byte(b.String()), 0o644); err != nil {
		t.Errorf("write %s: %v", resultFile, err)
	}
}

// slowest names the n longest lags with their commit's index, for a p99
// that is one outlier of fifty.
func slowest(lags []time.Duration, n int) string {
	idx := make([]int, len(lags))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(lags[b], lags[a]) })
	var parts []string
	for _, i := range idx[:min(n, len(idx))] {
		parts = append(parts, fmt.Sprintf("#%d %.3f s", i, lags[i].Seconds()))
	}
	return strings.Join(parts, ", ")
}
