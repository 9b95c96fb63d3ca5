package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/vwstream/vwstream/internal/config"
)

// app is what every subcommand gets: the process's environment and outputs.
type app struct {
	cmd      string // the subcommand being run
	environ  []string
	stdout   io.Writer
	stderr   io.Writer
	readFile config.ReadFileFunc
}

// cli is a subcommand's command line: its own flags, plus the configuration flags.
type cli struct {
	*flag.FlagSet
	synopsis string // e.g. "restore --to DIR [--at RFC3339 | --snapshot NAME|latest]"
	about    string // what the command does, a few lines
	config   *config.Flags
}

// newCLI starts a subcommand's flag set; register its own flags on it, then call parse.
func (a *app) newCLI(synopsis, about string) *cli {
	fs := flag.NewFlagSet("vwstream "+a.cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by exit
	fs.Usage = func() {}
	return &cli{FlagSet: fs, synopsis: synopsis, about: about}
}

// parse parses args. withConfig adds the configuration flags (the command loads
// the configuration). --help prints the help to stdout and returns errHelp.
func (a *app) parse(c *cli, args []string, withConfig bool) error {
	own := c.help()
	if withConfig {
		c.config = config.RegisterFlags(c.FlagSet)
	}
	err := c.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(a.stdout, own)
		if withConfig {
			fmt.Fprint(a.stdout, "\n"+config.FlagUsage())
		}
		return errHelp
	}
	if err != nil {
		return config.FlagError(err, "the flags of vwstream "+a.cmd+" --help")
	}
	return nil
}

// noArgs refuses positional arguments for commands that take none.
func (c *cli) noArgs() error {
	if c.NArg() > 0 {
		return usageErrorf("unexpected argument %q; see vwstream %s --help", c.Arg(0), strings.Fields(c.synopsis)[0])
	}
	return nil
}

// help renders the synopsis, description and the command's own flags.
func (c *cli) help() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: vwstream %s\n\n%s\n", c.synopsis, c.about)
	first := true
	c.VisitAll(func(f *flag.Flag) {
		if first {
			b.WriteString("\nFlags:\n")
			first = false
		}
		name, usage := flag.UnquoteUsage(f)
		arg := "--" + f.Name
		if name != "" {
			arg += " " + strings.ToUpper(name)
		}
		fmt.Fprintf(&b, "  %-32s %s\n", arg, usage)
	})
	return b.String()
}

// loadConfig resolves the configuration from the environment and the parsed flags.
// Warnings go to the log unless quiet (healthcheck runs every few seconds).
func (a *app) loadConfig(c *cli, quiet bool) (*config.Config, error) {
	cfg, err := c.config.Load(a.environ, a.readFile)
	if err != nil {
		return nil, err
	}
	if !quiet {
		log := newLogger(cfg, a.stderr)
		for _, w := range cfg.Warnings() {
			log.Warn(w)
		}
	}
	return cfg, nil
}

// parseAndLoad is parse, noArgs and loadConfig for the many commands that take
// flags and configuration but no positional arguments.
func (a *app) parseAndLoad(c *cli, args []string, quiet bool) (*config.Config, error) {
	if err := a.parse(c, args, true); err != nil {
		return nil, err
	}
	if err := c.noArgs(); err != nil {
		return nil, err
	}
	return a.loadConfig(c, quiet)
}
