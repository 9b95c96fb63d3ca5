package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/vwstream/vwstream/internal/bucket"
	"github.com/vwstream/vwstream/internal/human"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/wiring"
)

// runBackup is `vwstream backup`: one snapshot now.
func runBackup(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("backup [--json] [flags]",
		"Take one snapshot now (consistent database copy, files, manifest), compress and\n"+
			"encrypt it, upload it to the target and every extra remote, verify and prune.")
	asJSON := c.Bool("json", false, "print the result as JSON")
	cfg, err := a.parseAndLoad(c, args, false)
	if err != nil {
		return err
	}
	if err := cfg.RequireSnapshotEncryption(); err != nil {
		return err
	}
	log := newLogger(cfg, a.stderr)
	ver, _ := buildVersion()
	namer, err := wiring.Namer(cfg)
	if err != nil {
		return err
	}
	notifier, err := wiring.Notifier(cfg, log)
	if err != nil {
		return err
	}
	opts, err := wiring.SnapshotOptions(cfg, ver, namer, notifier, log)
	if err != nil {
		return err
	}
	if opts.Quiesce, err = wiring.ContainerOps(ctx, cfg, log); err != nil {
		return err
	}
	plain, err := bucket.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	dests := wiring.Destinations(ctx, cfg, plain, log)
	var p *progress
	if isTerminal(a.stderr) && !*asJSON {
		p = &progress{w: a.stderr, start: time.Now()}
		opts.Progress = p.update
	}
	limitMemory(a.environ)
	var res *snapshot.Result
	runErr := wiring.Pinger(cfg, log).Around(ctx, "snapshot", func() (err error) {
		res, err = snapshot.Run(ctx, opts, dests)
		return err
	})
	if p != nil {
		p.done()
	}
	if *asJSON {
		if err := printJSON(a.stdout, res); err != nil {
			return err
		}
	} else if runErr == nil {
		fmt.Fprintf(a.stdout, "%s  %s  %s\n", res.Name, human.Bytes(res.Size), res.Duration.Round(time.Millisecond))
		for _, d := range res.Destinations {
			fmt.Fprintf(a.stdout, "  %-20s ok, verified by %s\n", d.Name, d.Verified)
		}
		for _, ct := range res.Containers {
			state := "restarted"
			if ct.Error != "" {
				state = "NOT restarted: " + ct.Error
			} else if !ct.Restarted {
				state = "left stopped (no-restart label)"
			}
			fmt.Fprintf(a.stdout, "  container %-20s stopped %.1fs, %s\n", ct.Name, ct.Seconds, state)
		}
		if res.SpoolBytes > 0 {
			fmt.Fprintf(a.stdout, "  spool %s (removed)\n", human.Bytes(res.SpoolBytes))
		}
		if res.Degraded {
			fmt.Fprintf(a.stdout, "  degraded: %d attachment row(s) without their file\n", res.MissingAttachments)
		}
	}
	return runErr
}

// snapshotGCPercent is the GOGC of a snapshot run. The pipeline's memory is
// mostly fixed buffers (upload parts outside the heap, compression blocks) and
// short-lived garbage; the default GOGC=100 lets the heap grow to twice its
// live size between collections, a tighter one trades a few percent of CPU
// for about 20 MiB less peak RSS (bench/snapshot/RESULTS.md).
const snapshotGCPercent = 25

// limitMemory applies snapshotGCPercent unless GOGC is set.
func limitMemory(environ []string) {
	for _, kv := range environ {
		if strings.HasPrefix(kv, "GOGC=") {
			return
		}
	}
	debug.SetGCPercent(snapshotGCPercent)
}

// isTerminal reports whether w is a character device (a terminal), where
// progress is shown; logs and pipes stay quiet.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress prints bytes uploaded and the rate on one terminal line.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	last  time.Time
	n     int64
}

func (p *progress) update(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n = n
	if time.Since(p.last) < 250*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.print()
}

func (p *progress) print() {
	secs := time.Since(p.start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(p.n) / secs
	}
	fmt.Fprintf(p.w, "\ruploaded %s (%s/s)   ", human.Bytes(p.n), human.Bytes(int64(rate)))
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n > 0 {
		p.print()
		fmt.Fprintln(p.w)
	}
}
