// Command vwload builds Vaultwarden-shaped data folders and writes to them like
// Vaultwarden does, for testing and benchmarking vwstream without Vaultwarden.
//
//	vwload init   --dir D [--size small|medium|large] [--seed N]
//	vwload run    --dir D [--rate 20] [--duration 30s | --count N] [--ledger FILE] [--seed N] [--attachments 0.05] [--json]
//	vwload verify --dir D --ledger FILE [--before RFC3339] [--json]
//	vwload serve  --dir D --addr 127.0.0.1:8080 [--write-rate N] [--ledger FILE] [--migrate COLUMN]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// errUsage marks bad flags or arguments: exit code 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout)
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "vwload:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "vwload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: want a command: init, run, verify or serve", errUsage)
	}
	cmds := map[string]func(context.Context, []string, io.Writer) error{
		"init": runInit, "run": runRun, "verify": runVerify, "serve": runServe,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		return fmt.Errorf("%w: unknown command %q (want init, run, verify or serve)", errUsage, args[0])
	}
	return cmd(ctx, args[1:], stdout)
}

// newFlags returns a flag set that reports errors instead of printing usage.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse parses args and turns any flag problem into a one-line usage error.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %s: %v", errUsage, fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected argument %q", errUsage, fs.Name(), fs.Arg(0))
	}
	return nil
}

func requireDir(fs *flag.FlagSet, dir string) error {
	if dir == "" {
		return fmt.Errorf("%w: %s: --dir is required", errUsage, fs.Name())
	}
	return nil
}
