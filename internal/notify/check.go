package notify

import (
	"fmt"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/nicholas-fedor/shoutrrr/pkg/router"
	"github.com/nicholas-fedor/shoutrrr/pkg/types"

	"github.com/vwstream/vwstream/internal/human"
)

// funcs are the helpers templates get besides the Event's fields.
var funcs = template.FuncMap{
	"bytes": human.Bytes,
	"dur":   func(d time.Duration) string { return d.Round(time.Millisecond).String() },
}

// sampleEvents are rendered by CheckTemplate: a success, a degraded result and
// a failure, so a template that only breaks on one of them is caught before
// the first real event, whose notification would otherwise be dropped.
var sampleEvents = []Event{
	{Kind: "snapshot", OK: true, Name: "vaultwarden-20240101-000000.tar.gz", Size: 1 << 20, Duration: 3 * time.Second,
		Destinations: []Outcome{{Name: "s3", OK: true}}, Time: time.Unix(1704067200, 0)},
	{Kind: "snapshot", OK: true, Degraded: true, Name: "vaultwarden-20240101-000000.tar.gz", Size: 1 << 20,
		Destinations: []Outcome{{Name: "s3", OK: true}}, Time: time.Unix(1704067200, 0)},
	{Kind: "snapshot", OK: false, Name: "vaultwarden-20240101-000000.tar.gz", Error: "upload: connection refused",
		Destinations: []Outcome{{Name: "s3", OK: false, Error: "connection refused"}, {Name: "backup:vw", OK: true}}, Time: time.Unix(1704067200, 0)},
	{Kind: "file-sync", OK: false, Error: "remote deletion refused", Time: time.Unix(1704067200, 0)},
}

// parseTemplate parses a title or body template with the helpers.
func parseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Funcs(funcs).Parse(text)
}

// CheckTemplate parses text as a title or body template and renders it for
// sample events of every kind, so that a template failing at send time (an
// unknown field, a wrong helper call) is refused when the configuration is
// loaded. The error is one line.
func CheckTemplate(text string) error {
	t, err := parseTemplate("notification", text)
	if err != nil {
		return err
	}
	for _, ev := range sampleEvents {
		if err := t.Execute(new(strings.Builder), ev); err != nil {
			return fmt.Errorf("fails for a %s event: %w", ev.Kind, err)
		}
	}
	return nil
}

// Schemes lists the notification URL schemes shoutrrr supports, sorted.
func Schemes() []string {
	s := new(router.ServiceRouter).ListServices()
	slices.Sort(s)
	return s
}

// KnownScheme reports whether shoutrrr sends to URLs of scheme; a custom form
// such as "generic+https" needs a service that takes custom URLs.
func KnownScheme(scheme string) bool {
	name, custom, _ := strings.Cut(strings.ToLower(scheme), "+")
	service, err := new(router.ServiceRouter).NewService(name)
	if err != nil {
		return false
	}
	if custom != "" {
		_, ok := service.(types.CustomURLService)
		return ok
	}
	return true
}
