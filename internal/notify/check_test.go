package notify_test

import (
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/notify"
)

func TestCheckTemplate(t *testing.T) {
	for _, ok := range []string{notify.DefaultTitle, notify.DefaultBody, "", "plain text",
		"{{.Kind}} {{if .OK}}ok{{else}}{{.Error}}{{end}} {{bytes .Size}} {{dur .Duration}}",
		"{{range .Destinations}}{{.Name}}={{.OK}} {{end}}"} {
		if err := notify.CheckTemplate(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"{{.Kind",    // does not parse
		"{{.Event}}", // no such field: fails on every event
		"{{range .Destinations}}{{.Nmae}}{{end}}",          // fails only when there are destinations
		"{{if not .OK}}{{.Error.Code}}{{end}}",             // fails only on a failure
		"{{bytes .Name}}",                                  // wrong helper argument
		"{{template \"other\"}}",                           // undefined template
		"{{if .Degraded}}{{index .Destinations 5}}{{end}}", // out of range on a degraded event
	} {
		err := notify.CheckTemplate(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if strings.ContainsAny(err.Error(), "\n") {
			t.Errorf("%q: error on several lines: %q", bad, err)
		}
	}
}

func TestSchemes(t *testing.T) {
	for scheme, want := range map[string]bool{"ntfy": true, "smtp": true, "telegram": true, "generic": true,
		"NTFY": true, "ntfy+https": false, "generic+https": true, "smpt": false, "https": false, "": false} {
		if got := notify.KnownScheme(scheme); got != want {
			t.Errorf("KnownScheme(%q) = %v, want %v", scheme, got, want)
		}
	}
}
