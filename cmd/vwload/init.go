package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/vwstream/vwstream/internal/vaultsim"
)

func runInit(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("init")
	dir := fs.String("dir", "", "data folder to create")
	size := fs.String("size", vaultsim.SizeSmall, "small, medium or large")
	seed := fs.Int64("seed", 1, "seed; the same seed builds the same vault")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireDir(fs, *dir); err != nil {
		return err
	}
	if _, err := vaultsim.Preset(*size); err != nil {
		return fmt.Errorf("%w: init: --size: %v", errUsage, err)
	}
	start := time.Now()
	v, err := vaultsim.Create(*dir, vaultsim.Options{Size: *size, Seed: *seed})
	if err != nil {
		return err
	}
	if err := v.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s vault in %s (%s)\n", *size, *dir, time.Since(start).Round(time.Millisecond))
	return nil
}
