// Command vwstream keeps a Vaultwarden server's data safe in S3-compatible storage.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // TZ works in images without /usr/share/zoneinfo
)

func main() {
	// Before anything reads a secret: /proc/<pid>/environ and mem of a
	// non-dumpable process are closed to the child (see dumpable_linux.go).
	if err := undumpable(); err != nil {
		fmt.Fprintf(os.Stderr, "vwstream: prctl(PR_SET_DUMPABLE, 0): %v\n", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	if beforeExit != nil {
		beforeExit()
	}
	os.Exit(code)
}

// beforeExit is set only in benchmark builds (cpuprofile_bench.go): it ends
// the profile of a command that returns on its own.
var beforeExit func()

// command is one subcommand of the contract in DESIGN.md.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, a *app, args []string) error
}

// commands in the order `vwstream help` lists them.
var commands = []command{
	{"run", "the daemon; with a command after --, supervises it (Vaultwarden)", runRun},
	{"backup", "one snapshot now, to every destination", runBackup},
	{"snapshots", "list snapshots per destination", runSnapshots},
	{"restore", "restore the data folder: latest, point in time, or a named snapshot", runRestore},
	{"verify", "restore drill into a temp dir: integrity, manifest, references", runVerify},
	{"drill", "restore drill of the replica and the newest snapshot, timed", runDrill},
	{"check", "preflight: config, S3 write/read/conditional-write/delete probe, keys, data dir", runCheck},
	{"status", "what the node is doing (HTTP or status file)", runStatus},
	{"healthcheck", "exit 0 healthy, 1 not; for Docker HEALTHCHECK", runHealthcheck},
	{"update", "one pass of image updates of labelled containers, rolled back when unhealthy", runUpdate},
	{"promote", "secondary -> primary (takes the lease)", runPromote},
	{"rekey", "re-wrap the bucket key with NEW_ENCRYPTION_PASSPHRASE", runRekey},
	{"config", "effective configuration, secrets redacted", runConfig},
	{"version", "version, commit and Go version", runVersion},
	{"demo", "a demo vault written like Vaultwarden, protected and restored (no S3 needed)", runDemo},
}

// run is main without the process: tests call it with their own args and environment.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	a := &app{environ: environ, stdout: stdout, stderr: stderr, readFile: os.ReadFile}
	if len(args) == 0 {
		printUsage(stdout)
		return exitOK
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			return run(ctx, []string{rest[0], "--help"}, environ, stdout, stderr)
		}
		printUsage(stdout)
		return exitOK
	case "-version", "--version":
		name = "version"
	}
	for _, c := range commands {
		if c.name == name {
			a.cmd = name
			return a.exit(c.run(ctx, a, rest))
		}
	}
	fmt.Fprintf(stderr, "vwstream: unknown command %q; run vwstream help for the list\n", name)
	return exitUsage
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "vwstream keeps a Vaultwarden server's data safe in S3-compatible storage.\n\nUsage:\n  vwstream COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun vwstream COMMAND --help for its flags. Configuration: environment variables,\neach overridable by a flag (see docs/CONFIGURATION.md or vwstream config --reference).\nExit codes: 0 success, 1 failure at run time, 2 bad usage or configuration.\n")
}
