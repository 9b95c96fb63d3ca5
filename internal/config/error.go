package config

import (
	"strconv"
	"strings"
)

// Error is a configuration error: one line naming the variable or flag, what is
// wrong and what is accepted. Commands exit with code 2 on it.
type Error struct {
	Name     string // variable, NAME_FILE or --flag that carried the value
	Value    string // the offending value; printed only when HasValue and not Secret
	HasValue bool
	Secret   bool
	Reason   string
	Accepted string
}

// Error formats the error as `config: NAME="value": reason; accepted: ...`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	b.WriteString(e.Name)
	switch {
	case e.Secret:
		b.WriteString(" (value hidden)")
	case e.HasValue:
		b.WriteString("=")
		v := e.Value
		if strings.Contains(v, "://") {
			v = RedactURL(v) // a URL may carry a password or token
		}
		b.WriteString(strconv.Quote(v))
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	if e.Accepted != "" {
		b.WriteString("; accepted: ")
		b.WriteString(e.Accepted)
	}
	return oneLine(b.String())
}

// invalid is what a value parser returns; Load turns it into an *Error.
type invalid struct {
	reason   string
	accepted string
}

func (e *invalid) Error() string { return e.reason }

func bad(reason, accepted string) error { return &invalid{reason: reason, accepted: accepted} }

// oneLine keeps an error on one line whatever a wrapped error contains.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(strings.NewReplacer("\r", " ", "\n", " ").Replace(s)), " ")
}
