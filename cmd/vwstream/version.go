package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at build time: go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc1234".
var (
	version = ""
	commit  = ""
)

// buildVersion is the version and commit, from -ldflags or else the build info.
func buildVersion() (ver, rev string) {
	ver, rev = version, commit
	if info, ok := debug.ReadBuildInfo(); ok {
		if ver == "" {
			ver = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && rev == "" {
				rev = s.Value
			}
			if s.Key == "vcs.modified" && s.Value == "true" && rev != "" && commit == "" {
				rev += "-dirty"
			}
		}
	}
	if ver == "" {
		ver = "(devel)"
	}
	if rev == "" {
		rev = "unknown"
	}
	return ver, rev
}

// runVersion is `vwstream version [--json]`.
func runVersion(_ context.Context, a *app, args []string) error {
	c := a.newCLI("version [--json]", "Print the version, commit and Go version.")
	asJSON := c.Bool("json", false, "print JSON")
	if err := a.parse(c, args, false); err != nil {
		return err
	}
	if err := c.noArgs(); err != nil {
		return err
	}
	ver, rev := buildVersion()
	if *asJSON {
		return printJSON(a.stdout, map[string]string{"version": ver, "commit": rev, "go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH})
	}
	_, err := fmt.Fprintf(a.stdout, "vwstream %s commit %s %s %s/%s\n", ver, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}
