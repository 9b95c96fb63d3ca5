package snapshot

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Object layout of snapshots in a destination.
const (
	// LatestBase is the base name of the copy of the newest snapshot.
	LatestBase = "vaultwarden-latest"
	// SidecarExt is appended to an archive name for its metadata object.
	SidecarExt = ".json"
	// DefaultFilename is BACKUP_FILENAME's default.
	DefaultFilename = "vaultwarden-%Y%m%d-%H%M%S"
)

// Namer turns capture times into archive names and back, from a BACKUP_FILENAME
// pattern (the strftime directives %Y %y %m %d %H %M %S %j %s %z %Z %%).
type Namer struct {
	pattern string
	loc     *time.Location
	re      *regexp.Regexp
	fields  []byte // the directive of each capture group of re, in order
}

// NewNamer compiles pattern for names in loc (nil means UTC).
func NewNamer(pattern string, loc *time.Location) (*Namer, error) {
	if pattern == "" {
		pattern = DefaultFilename
	}
	if loc == nil {
		loc = time.UTC
	}
	n := &Namer{pattern: pattern, loc: loc}
	var re strings.Builder
	re.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if c != '%' {
			re.WriteString(regexp.QuoteMeta(string(c)))
			continue
		}
		if i+1 >= len(pattern) {
			return nil, fmt.Errorf("snapshot name pattern %q: trailing %%", pattern)
		}
		i++
		d := pattern[i]
		switch d {
		case 'Y':
			re.WriteString(`(\d{4})`)
		case 'y', 'm', 'd', 'H', 'M', 'S':
			re.WriteString(`(\d{2})`)
		case 'j':
			re.WriteString(`(\d{3})`)
		case 's':
			re.WriteString(`(\d+)`)
		case 'z':
			re.WriteString(`([+-]\d{4})`)
		case 'Z':
			re.WriteString(`([A-Za-z0-9+-]+)`)
		case '%':
			re.WriteString("%")
			continue
		default:
			return nil, fmt.Errorf("snapshot name pattern %q: unknown directive %%%c", pattern, d)
		}
		n.fields = append(n.fields, d)
	}
	// The archive suffix is whatever the pipeline added: .tar, then .gz or .zst,
	// then .gpg or .age.
	re.WriteString(`\.tar(?:\.gz|\.zst)?(?:\.gpg|\.age)?$`)
	rx, err := regexp.Compile(re.String())
	if err != nil {
		return nil, fmt.Errorf("snapshot name pattern %q: %w", pattern, err)
	}
	n.re = rx
	return n, nil
}

// Dated reports whether names carry enough of the time (at least the day) for
// retention to judge their age.
func (n *Namer) Dated() bool {
	has := func(c byte) bool { return strings.IndexByte(string(n.fields), c) >= 0 }
	return has('s') || ((has('Y') || has('y')) && (has('j') || (has('m') && has('d'))))
}

// Base returns the name for a capture at t, without extension.
func (n *Namer) Base(t time.Time) string {
	t = t.In(n.loc)
	var b strings.Builder
	p := n.pattern
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+1 >= len(p) {
			b.WriteByte(p[i])
			continue
		}
		i++
		switch p[i] {
		case 'Y':
			fmt.Fprintf(&b, "%04d", t.Year())
		case 'y':
			fmt.Fprintf(&b, "%02d", t.Year()%100)
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case 'H':
			fmt.Fprintf(&b, "%02d", t.Hour())
		case 'M':
			fmt.Fprintf(&b, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&b, "%02d", t.Second())
		case 'j':
			fmt.Fprintf(&b, "%03d", t.YearDay())
		case 's':
			b.WriteString(strconv.FormatInt(t.Unix(), 10))
		case 'z':
			b.WriteString(t.Format("-0700"))
		case 'Z':
			b.WriteString(t.Format("MST"))
		default:
			b.WriteByte(p[i])
		}
	}
	return b.String()
}

// Parse returns the capture time encoded in an archive name (without the
// snapshots/ prefix), and false for any name that is not one of ours: foreign
// objects, sidecars and the -latest copy.
func (n *Namer) Parse(name string) (time.Time, bool) {
	if strings.HasPrefix(name, LatestBase+".") {
		return time.Time{}, false
	}
	m := n.re.FindStringSubmatch(name)
	if m == nil {
		return time.Time{}, false
	}
	year, month, day, hour, minute, sec, yday := 1970, 1, 1, 0, 0, 0, 0
	loc := n.loc
	for i, d := range n.fields {
		s := m[i+1]
		v, _ := strconv.Atoi(s)
		switch d {
		case 'Y':
			year = v
		case 'y':
			year = 2000 + v
		case 'm':
			month = v
		case 'd':
			day = v
		case 'H':
			hour = v
		case 'M':
			minute = v
		case 'S':
			sec = v
		case 'j':
			yday = v
		case 's':
			u, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(u, 0).In(n.loc), true
		case 'z':
			t, err := time.Parse("-0700", s)
			if err != nil {
				return time.Time{}, false
			}
			loc = t.Location()
		}
	}
	if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, loc)
	if yday > 0 {
		t = time.Date(year, 1, yday, hour, minute, sec, 0, loc)
	}
	return t, true
}

// Ext returns the suffix of an archive name: ".tar", ".tar.gz.gpg", ...
func Ext(name string) string {
	i := strings.LastIndex(name, ".tar")
	if i < 0 {
		return ""
	}
	return name[i:]
}

// splitExt returns the compression (".gz", ".zst" or "") and encryption
// (".gpg", ".age" or "") suffixes of an archive name.
func splitExt(name string) (comp, enc string) {
	ext := strings.TrimPrefix(Ext(name), ".tar")
	for _, e := range []string{".gpg", ".age"} {
		if strings.HasSuffix(ext, e) {
			enc = e
			ext = strings.TrimSuffix(ext, e)
		}
	}
	return ext, enc
}
