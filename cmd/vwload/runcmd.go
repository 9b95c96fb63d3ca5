package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vwstream/vwstream/internal/vaultsim"
)

// workloadFlags are the flags run and serve share.
type workloadFlags struct {
	rate        float64
	burst       int
	writers     int
	attachments float64
	sends       float64
	seed        int64
	ledger      string
}

func (w *workloadFlags) register(fs interface {
	Float64Var(*float64, string, float64, string)
	IntVar(*int, string, int, string)
	Int64Var(*int64, string, int64, string)
	StringVar(*string, string, string, string)
}, rate float64) {
	fs.Float64Var(&w.rate, "rate", rate, "average transactions per second (0 or negative: as fast as possible)")
	fs.IntVar(&w.burst, "burst", 1, "transactions per burst")
	fs.IntVar(&w.writers, "writers", vaultsim.DefaultWriters, "concurrent writing connections (1-4)")
	fs.Float64Var(&w.attachments, "attachments", vaultsim.DefaultAttachmentRatio, "share of transactions that upload an attachment")
	fs.Float64Var(&w.sends, "sends", vaultsim.DefaultSendRatio, "share of transactions that create a send")
	fs.Int64Var(&w.seed, "seed", 1, "seed of the operation mix")
	fs.StringVar(&w.ledger, "ledger", "", "ledger file (outside the data folder)")
}

func (w *workloadFlags) options(cmd string) (vaultsim.WorkloadOptions, error) {
	if w.writers < 1 || w.writers > vaultsim.MaxWriters {
		return vaultsim.WorkloadOptions{}, fmt.Errorf("%w: %s: --writers must be 1-%d", errUsage, cmd, vaultsim.MaxWriters)
	}
	if w.attachments < 0 || w.sends < 0 || w.attachments+w.sends > 1 {
		return vaultsim.WorkloadOptions{}, fmt.Errorf("%w: %s: --attachments and --sends must be shares between 0 and 1", errUsage, cmd)
	}
	if w.burst < 1 {
		return vaultsim.WorkloadOptions{}, fmt.Errorf("%w: %s: --burst must be at least 1", errUsage, cmd)
	}
	o := vaultsim.WorkloadOptions{Rate: w.rate, Burst: w.burst, Writers: w.writers,
		AttachmentRatio: w.attachments, SendRatio: w.sends, Seed: w.seed, Ledger: w.ledger}
	// Zero means "the default" in WorkloadOptions; on the command line it means none.
	if o.AttachmentRatio == 0 {
		o.AttachmentRatio = -1
	}
	if o.SendRatio == 0 {
		o.SendRatio = -1
	}
	if o.Rate == 0 {
		o.Rate = -1
	}
	return o, nil
}

func runRun(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("run")
	dir := fs.String("dir", "", "data folder")
	duration := fs.Duration("duration", 0, "stop after this long")
	count := fs.Int64("count", 0, "stop after this many transactions")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	var wf workloadFlags
	wf.register(fs, vaultsim.DefaultRate)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireDir(fs, *dir); err != nil {
		return err
	}
	if *duration < 0 || *count < 0 {
		return fmt.Errorf("%w: run: --duration and --count must not be negative", errUsage)
	}
	opts, err := wf.options("run")
	if err != nil {
		return err
	}
	opts.Duration, opts.Count = *duration, *count
	v, err := vaultsim.Open(*dir)
	if err != nil {
		return err
	}
	w := vaultsim.NewWorkload(v, opts)
	stopProgress := progress(w, stdout)
	st, err := w.Run(ctx)
	stopProgress()
	if cerr := v.Close(); err == nil {
		err = cerr
	}
	printSummary(stdout, st, *asJSON)
	return err
}

// progress prints a line per second while stdout is a terminal.
func progress(w *vaultsim.Workload, stdout io.Writer) (stop func()) {
	f, ok := stdout.(*os.File)
	if !ok {
		return func() {}
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s := w.Stats()
				fmt.Fprintf(stdout, "%6.0fs  tx %d  attachments %d  sends %d  seq %d  %.1f tx/s\n",
					s.Elapsed.Seconds(), s.Tx, s.Attachments, s.Sends, s.LastSeq, s.TxPerSec)
			}
		}
	}()
	return func() { close(done); <-finished }
}

func printSummary(stdout io.Writer, s vaultsim.Stats, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(s)
		fmt.Fprintln(stdout, string(b))
		return
	}
	fmt.Fprintf(stdout, "committed %d tx (seq %d-%d), %d attachments, %d sends, %d file bytes in %s: %.1f tx/s\n",
		s.Tx, s.FirstSeq, s.LastSeq, s.Attachments, s.Sends, s.FileBytes, s.Elapsed.Round(time.Millisecond), s.TxPerSec)
}
