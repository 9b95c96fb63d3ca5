package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/vwstream/vwstream/internal/vaultsim"
	"golang.org/x/sync/errgroup"
)

// runServe answers /alive and writes at --write-rate until SIGTERM, then stops the
// workload (finishing its transaction in flight), closes the database and exits 0.
func runServe(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("serve")
	dir := fs.String("dir", "", "data folder")
	addr := fs.String("addr", "127.0.0.1:8080", "listen address for /alive")
	var wf workloadFlags
	wf.register(fs, 0)
	fs.Float64Var(&wf.rate, "write-rate", 5, "transactions per second (0: serve only)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireDir(fs, *dir); err != nil {
		return err
	}
	writeRate := wf.rate
	opts, err := wf.options("serve")
	if err != nil {
		return err
	}
	v, err := vaultsim.Open(*dir)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return vaultsim.Serve(gctx, *addr, v) })
	var w *vaultsim.Workload
	if writeRate > 0 {
		w = vaultsim.NewWorkload(v, opts)
		g.Go(func() error {
			_, err := w.Run(gctx)
			return err
		})
	}
	slog.Info("vwload serving", "addr", *addr, "dir", *dir, "write_rate", writeRate)
	err = g.Wait()
	if cerr := v.Close(); err == nil {
		err = cerr
	}
	if w != nil {
		printSummary(stdout, w.Stats(), false)
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
