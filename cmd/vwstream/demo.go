package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vwstream/vwstream/internal/bucket"
	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/node"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/restore"
	"github.com/vwstream/vwstream/internal/vault"
	"github.com/vwstream/vwstream/internal/vaultsim"
	"github.com/vwstream/vwstream/internal/wiring"
)

// runDemo is `vwstream demo`: the README's first command. It protects a demo
// vault that vaultsim writes to, with the same node `run` uses, then restores
// the backup and checks it against the ledger of committed transactions.
func runDemo(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("demo [--dir DIR] [--duration D] [--rate N] [--size small|medium|large]",
		"Show vwstream at work with nothing else installed: build a Vaultwarden-shaped\n"+
			"data folder in DIR/data, write to it the way Vaultwarden does, replicate it to the\n"+
			"target (by default the local folder DIR/backup), then restore the backup into\n"+
			"DIR/restored and check that every committed transaction is there.")
	dir := c.String("dir", "vwstream-demo", "`DIR` for the demo's data, backup and restored folders")
	duration := c.Duration("duration", 20*time.Second, "how long to write (`D`); Ctrl-C stops earlier")
	rate := c.Float64("rate", 20, "transactions per second (`N`)")
	size := c.String("size", "small", "vault size: small, medium or large")
	if err := a.parse(c, args, true); err != nil {
		return err
	}
	if err := c.noArgs(); err != nil {
		return err
	}
	data := filepath.Join(*dir, "data")
	// The first occurrence of a variable wins. The demo's data folder is its own;
	// its target and the quiet log level are defaults the user's variables
	// (S3_BUCKET for a real bucket, LOCAL_TARGET, LOG_LEVEL) override.
	a.environ = append([]string{"DATA_FOLDER=" + data, "DATABASE_URL="}, a.environ...)
	a.environ = append(a.environ, "LOCAL_TARGET="+filepath.Join(*dir, "backup"), "LOG_LEVEL=warn")
	cfg, err := a.loadConfig(c, false)
	if err != nil {
		return err
	}
	if err := cfg.RequireEncryption(); err != nil {
		return err
	}
	out := a.stdout

	vault, err := openOrCreateVault(data, *size)
	if err != nil {
		return err
	}
	defer vault.Close()
	ledger := filepath.Join(*dir, "ledger")

	log := newLogger(cfg, a.stderr)
	plain, err := bucket.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	n := node.New(node.Options{Config: cfg, Logger: log})
	nodeCtx, stopNode := context.WithCancel(context.Background())
	defer stopNode()
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- n.Run(nodeCtx) }()

	// The writing starts once the node protects the folder: a stop in the middle
	// of its start-up would only show a cancelled start.
	select {
	case <-n.Ready():
	case err := <-nodeDone:
		return fmt.Errorf("demo node did not start: %w", err)
	case <-ctx.Done():
		stopNode()
		return errors.Join(ctx.Err(), <-nodeDone)
	}
	fmt.Fprintf(out, "demo vault  %s\ntarget      %s\nwriting %.0f tx/s for %s (Ctrl-C stops)\n\n", data, plain, *rate, *duration)
	work := vaultsim.NewWorkload(vault, vaultsim.WorkloadOptions{Rate: *rate, Duration: *duration, Ledger: ledger, AttachmentRatio: 0.05, Seed: time.Now().UnixNano()})
	workDone := make(chan error, 1)
	go func() { _, err := work.Run(ctx); workDone <- err }()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start := time.Now()
loop:
	for {
		select {
		case err := <-workDone:
			if err != nil && !errors.Is(err, context.Canceled) {
				stopNode()
				return errors.Join(fmt.Errorf("demo workload: %w", err), <-nodeDone) // flushed before we exit
			}
			break loop
		case err := <-nodeDone:
			return fmt.Errorf("demo node stopped: %w", err)
		case <-tick.C:
			st := work.Stats()
			line := fmt.Sprintf("%4.0fs  committed %5d tx, %3d attachments", time.Since(start).Seconds(), st.Tx, st.Attachments)
			if rs, ok := n.Replication(); ok {
				line += fmt.Sprintf("  |  replica at txid %d, lag %.1fs", rs.ReplicatedTXID, rs.Lag.Seconds())
				if rs.LastError != "" {
					line += "  (error: " + rs.LastError + ")"
				}
			}
			fmt.Fprintln(out, line)
		}
	}
	fmt.Fprintf(out, "\nstopping: final flush to the target\n")
	stopNode()
	if err := <-nodeDone; err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	// Ctrl-C ends the writing, not the proof: restore and verify regardless.
	return demoRestore(context.WithoutCancel(ctx), a, cfg, plain, *dir, ledger)
}

// demoRestore restores the demo's backup and checks it against the ledger.
func demoRestore(ctx context.Context, a *app, cfg *config.Config, plain objstore.Store, dir, ledger string) error {
	view, err := bucket.Data(ctx, plain, cfg, bucket.ReadKey)
	if err != nil {
		return err
	}
	restored := filepath.Join(dir, "restored")
	res, err := restore.Replica(ctx, restore.Options{Store: view, Dir: restored, DBName: filepath.Base(cfg.DBPath),
		Force: true, Files: wiring.RestoreFiles(cfg, view)})
	if err != nil {
		return err
	}
	rep, err := vaultsim.Verify(res.Database, ledger, time.Now())
	fmt.Fprintf(a.stdout, "restored    %s (transaction %d) and %d files\n", res.Database, res.TXID, res.Files)
	if err != nil {
		return fmt.Errorf("restored copy does not hold every committed transaction: %w", err)
	}
	fmt.Fprintf(a.stdout, "verified    integrity ok; all %d committed transactions of the ledger are in the restored copy\n", rep.LedgerEntries)
	missing, err := vault.MissingAttachments(res.Database, filepath.Join(restored, "attachments"))
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("restored copy lacks %d attachment files its database refers to", len(missing))
	}
	fmt.Fprintf(a.stdout, "verified    every attachment row has its file\n")
	return nil
}

// openOrCreateVault reopens the demo vault, or builds it on the first run.
func openOrCreateVault(dir, size string) (*vaultsim.Vault, error) {
	if _, err := os.Stat(filepath.Join(dir, "db.sqlite3")); err == nil {
		return vaultsim.Open(dir)
	}
	return vaultsim.Create(dir, vaultsim.Options{Seed: 1, Size: size})
}
