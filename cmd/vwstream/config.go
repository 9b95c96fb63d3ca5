package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/vwstream/vwstream/internal/config"
)

// runConfig is `vwstream config [--json] [--reference]`.
func runConfig(_ context.Context, a *app, args []string) error {
	c := a.newCLI("config [--json | --reference | --env-example] [flags]",
		"Print the effective configuration: every variable, its value and where it came\n"+
			"from (default, env NAME, file NAME_FILE, flag --name). Secrets show as (set).")
	asJSON := c.Bool("json", false, "print JSON instead of a table")
	reference := c.Bool("reference", false, "print the configuration reference (docs/CONFIGURATION.md) and exit")
	envExample := c.Bool("env-example", false, "print every variable at its default, as deploy/.env.example, and exit")
	if err := a.parse(c, args, true); err != nil {
		return err
	}
	if err := c.noArgs(); err != nil {
		return err
	}
	if *reference {
		_, err := fmt.Fprint(a.stdout, config.Reference())
		return err
	}
	if *envExample {
		_, err := fmt.Fprint(a.stdout, config.EnvExample())
		return err
	}
	cfg, err := a.loadConfig(c, false)
	if err != nil {
		return err
	}
	if err := cfg.CheckHost(config.OSHost{}); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(a.stdout, cfg.Rows())
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVALUE\tSOURCE")
	for _, r := range cfg.Rows() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, r.Value, r.Source)
	}
	return tw.Flush()
}
