package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/nicholas-fedor/shoutrrr"
	"github.com/nicholas-fedor/shoutrrr/pkg/router"
	"github.com/nicholas-fedor/shoutrrr/pkg/types"
)

// DefaultTitle and DefaultBody are the built-in templates. They receive an Event
// plus the helpers bytes (human size) and dur (rounded duration).
const (
	DefaultTitle = `{{if eq .Kind "alert"}}vwstream alert {{.Name}}: {{if .OK}}cleared{{else if .Reminder}}still {{.Severity}}{{else}}{{.Severity}}{{end}}
{{- else}}vwstream {{.Kind}} {{if not .OK}}FAILED{{else if .Degraded}}degraded{{else}}ok{{end}}{{if .Name}}: {{.Name}}{{end}}{{end}}`
	DefaultBody = `{{if eq .Kind "snapshot"}}{{if .OK}}Snapshot {{.Name}} done{{else}}Snapshot {{.Name}} failed{{end}} in {{dur .Duration}}, {{bytes .Size}}.
{{- if .Degraded}}
Degraded: attachment rows without their file (kept and flagged).{{end}}
{{- range .Destinations}}
- {{.Name}}: {{if .OK}}ok{{else}}FAILED: {{.Error}}{{end}}{{end}}
{{- range .Containers}}
- container {{.Name}}: stopped {{printf "%.1f" .Seconds}} s, {{if .Restarted}}restarted{{else if .Error}}NOT RESTARTED: {{.Error}}{{else}}left stopped (no-restart label){{end}}{{end}}
{{- if .Error}}
Error: {{.Error}}{{end}}{{else if eq .Kind "alert"}}{{if .OK}}Cleared after {{dur .Duration}}.{{else}}{{.Error}}{{end}}
{{- else if eq .Kind "drill"}}Restore drill {{if .OK}}passed{{else}}FAILED{{end}} in {{dur .Duration}}{{if .Name}} (snapshot {{.Name}}){{end}}.
{{- if .Error}}
Error: {{.Error}}{{end}}
{{- else}}{{if .Detail}}{{.Detail}}{{else if .Error}}{{.Error}}{{else}}ok{{end}}{{end}}`
)

// Options configure a Service; the fields mirror NotifyConfig.
type Options struct {
	URLs   []string
	Level  string // LevelError, LevelWarning (default) or LevelInfo
	Title  string // template; "" for DefaultTitle
	Body   string // template; "" for DefaultBody
	Logger *slog.Logger
	// Timeout bounds one Notify; 0 means 30 s.
	Timeout time.Duration
}

// Service renders events and sends them to every URL.
type Service struct {
	level   string
	title   *template.Template
	body    *template.Template
	sender  *router.ServiceRouter
	schemes []string // for messages: the URL schemes, never the URLs
	secrets []string // the URLs and their hosts, scrubbed from errors
	timeout time.Duration
	log     *slog.Logger
}

var _ Notifier = (*Service)(nil)

// New checks the URLs and templates. With no URL it returns a Service that
// only logs. Its errors never contain a URL.
func New(o Options) (*Service, error) {
	s := &Service{level: o.Level, timeout: o.Timeout, log: o.Logger}
	if s.level == "" {
		s.level = LevelWarning
	}
	if s.timeout == 0 {
		s.timeout = 30 * time.Second
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if s.title, err = parseTemplate("title", orDefault(o.Title, DefaultTitle)); err != nil {
		return nil, fmt.Errorf("notification title template: %w", err)
	}
	if s.body, err = parseTemplate("body", orDefault(o.Body, DefaultBody)); err != nil {
		return nil, fmt.Errorf("notification body template: %w", err)
	}
	for i, raw := range o.URLs {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme == "" {
			return nil, fmt.Errorf("notification URL #%d is not a URL", i+1)
		}
		s.schemes = append(s.schemes, u.Scheme)
		s.secrets = append(s.secrets, raw, u.Host, u.Hostname())
	}
	if len(o.URLs) > 0 {
		sender, err := shoutrrr.CreateSender(o.URLs...)
		if err != nil {
			return nil, fmt.Errorf("notification URLs (%s): %s", strings.Join(s.schemes, ", "), scrub(err.Error(), o.URLs))
		}
		s.sender = sender
		s.sender.Timeout = s.timeout
	}
	return s, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Notify sends ev when the level lets it through: every event at info, also
// warning alerts at warning, failures, degraded snapshots and critical alerts
// at error.
func (s *Service) Notify(ctx context.Context, ev Event) error {
	if !passes(ev.level(), s.level) {
		return nil
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	title, body, err := s.Render(ev)
	if err != nil {
		return err
	}
	if s.sender == nil {
		s.log.Info("notification (no NOTIFICATION_URLS)", "title", title)
		return nil
	}
	done := make(chan []error, 1)
	go func() {
		done <- s.sender.Send(body, &types.Params{"title": title})
	}()
	var errs []error
	select {
	case errs = <-done:
	case <-ctx.Done():
		return fmt.Errorf("notify: %w", ctx.Err())
	}
	var out []error
	for i, e := range errs {
		if e == nil {
			continue
		}
		scheme := "?"
		if i < len(s.schemes) {
			scheme = s.schemes[i]
		}
		out = append(out, fmt.Errorf("notify via %s (URL #%d): %s", scheme, i+1, scrub(e.Error(), s.secrets)))
	}
	return errors.Join(out...)
}

// Render returns the title and body of ev.
func (s *Service) Render(ev Event) (title, body string, err error) {
	var t, b bytes.Buffer
	if err := s.title.Execute(&t, ev); err != nil {
		return "", "", fmt.Errorf("notification title: %w", err)
	}
	if err := s.body.Execute(&b, ev); err != nil {
		return "", "", fmt.Errorf("notification body: %w", err)
	}
	return strings.TrimSpace(t.String()), strings.TrimSpace(b.String()), nil
}

var urlLike = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"']+`)

// scrubAny removes anything URL-shaped: shoutrrr and net/http put the target
// URL, tokens and all, in their errors.
func scrubAny(s string) string { return urlLike.ReplaceAllString(s, "<url>") }

// scrub removes anything URL-shaped, then the given URLs and hosts, from s.
func scrub(s string, secrets []string) string {
	s = scrubAny(s)
	for _, u := range secrets {
		if u != "" {
			s = strings.ReplaceAll(s, u, "<redacted>")
		}
	}
	return s
}
