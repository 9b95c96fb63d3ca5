package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vwstream/vwstream/internal/human"
	"github.com/vwstream/vwstream/internal/status"
)

// runStatus is `vwstream status [--json]`.
func runStatus(ctx context.Context, a *app, args []string) error {
	c := a.newCLI("status [--json] [flags]",
		"Show what the node is doing: role, lease, last sync, last snapshot, errors.\n"+
			"Asks the running daemon at STATUS_ADDR, or reads STATUS_FILE.")
	asJSON := c.Bool("json", false, "print JSON instead of text")
	cfg, err := a.parseAndLoad(c, args, true)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	doc, source, err := status.Load(ctx, cfg.Health.StatusAddr, cfg.Health.StatusFile)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(a.stdout, doc)
	}
	printSummary(a.stdout, doc, source, time.Now())
	return nil
}

// printSummary renders the status document for a human, one line per part.
func printSummary(w io.Writer, s *status.Status, source string, now time.Time) {
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return humanDur(now.Sub(t)) + " ago"
	}
	line := func(name, format string, args ...any) {
		fmt.Fprintf(w, "%-12s %s\n", name, fmt.Sprintf(format, args...))
	}
	written := time.Unix(s.Timestamp, 0)
	node := string(s.Role)
	if s.Mode != "" {
		node += ", " + string(s.Mode)
	}
	line("status", "%s (%s), up since %s; from %s, written %s", s.Status, node, ago(s.StartedAt), source, ago(written))
	if l := s.Lease; l != nil {
		switch {
		case l.Ours:
			line("lease", "held by this node, %s, expires %s", l.Holder, l.ExpiresAt.Format(time.RFC3339))
		case l.Error != "":
			line("lease", "%s", l.Error)
		case l.Holder != "":
			line("lease", "held by %s until %s", l.Holder, l.ExpiresAt.Format(time.RFC3339))
		default:
			line("lease", "none")
		}
	}
	if d := s.DB; d != nil && d.Server != "" {
		line("db", "database: %s; last dump %s", d.Server, ago(d.LastSync))
	} else if d != nil {
		line("db", "txid %d local, %d replicated, lag %s, last sync %s", d.TXIDLocal, d.TXIDReplicated,
			humanDur(time.Duration(d.LagSeconds*float64(time.Second))), ago(d.LastSync))
	}
	if f := s.Files; f != nil {
		line("files", "%d pending, %d uploaded (%s), last sync %s", f.Pending, f.Uploaded, human.Bytes(f.UploadedBytes), ago(f.LastSync))
	}
	if p := s.Snapshot; p != nil {
		last := "none yet"
		if !p.LastSuccess.IsZero() {
			last = fmt.Sprintf("%s (%s), %s", p.LastName, human.Bytes(p.LastSize), ago(p.LastSuccess))
		}
		result := p.LastResult
		if result == "" {
			result = "no attempt yet"
		}
		line("snapshot", "last attempt %s; newest good: %s", result, last)
	}
	if k := s.Child; k != nil {
		state := "not running"
		if k.Running {
			state = fmt.Sprintf("running (pid %d)", k.PID)
		} else if k.ExitCode != nil {
			state = fmt.Sprintf("exited with code %d", *k.ExitCode)
		}
		line("vaultwarden", "%s, %d restarts", state, k.Restarts)
	}
	if d := s.Drill; d != nil {
		line("drill", "last %s in %s, %s; last passed %s", d.LastResult, humanDur(time.Duration(d.LastDuration*float64(time.Second))), ago(d.LastTime), ago(d.LastSuccess))
	}
	for i, al := range s.Alerts {
		name := ""
		if i == 0 {
			name = "alerts"
		}
		line(name, "%s (%s, since %s): %s", al.Name, al.Severity, ago(al.Since), al.Message)
	}
	if len(s.Errors) == 0 {
		line("errors", "none")
		return
	}
	line("errors", "%s", s.Errors[0])
	for _, e := range s.Errors[1:] {
		line("", "%s", e)
	}
}

// humanDur rounds a duration for reading: 350ms, 4.2s, 3m12s, 5h3m, 2d4h.
func humanDur(d time.Duration) string {
	switch {
	case d < 0:
		return "in " + humanDur(-d)
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
	days := int(d / (24 * time.Hour))
	return fmt.Sprintf("%dd%dh", days, int((d-time.Duration(days)*24*time.Hour)/time.Hour))
}
