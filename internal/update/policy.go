package update

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vwstream/vwstream/internal/docker"
)

// LabelPin keeps a container on a version range: an image whose version
// label (LabelVersion) is outside it is not used. Forms, with or without a
// leading v: 1, 1.32, 1.x, 1.32.x (the same leading numbers); ~1.32.0 (same
// major and minor, at least that); ^1.32.0 (same major, at least that);
// comparisons >=, >, <=, <, = joined by spaces (>=1.30 <2). Pre-releases
// (1.33.0-beta) match only a range that names one.
const LabelPin = "vwstream.update.pin"

// notYet says why a pulled image must not replace cur yet: outside the
// container's pinned range, or too new for the cooldown; "" when it may.
func (o Options) notYet(cur *current, img *docker.ImageInfo, version string) string {
	if pin := cur.labels[LabelPin]; pin != "" {
		ok, err := pinMatches(pin, version)
		if err != nil {
			return fmt.Sprintf("label %s=%q: %v", LabelPin, pin, err)
		}
		if !ok {
			v := version
			if v == "" {
				v = "no version label"
			}
			return fmt.Sprintf("the new image (%s) is outside the pinned range %s", v, pin)
		}
	}
	if o.Cooldown > 0 {
		c, err := time.Parse(time.RFC3339Nano, img.Created)
		if err != nil {
			return fmt.Sprintf("UPDATE_COOLDOWN: the new image has no build time (%q); not used", img.Created)
		}
		if time.Since(c) < o.Cooldown {
			return fmt.Sprintf("the new image was built %s ago; UPDATE_COOLDOWN waits for %s", time.Since(c).Round(time.Minute), o.Cooldown)
		}
	}
	return ""
}

// semver is a parsed version: up to three numbers and a pre-release suffix.
type semver struct {
	num [3]int
	n   int // how many numbers were given
	pre string
}

func parseSemver(s string) (semver, error) {
	var v semver
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	s, v.pre, _ = strings.Cut(s, "-")
	s, _, _ = strings.Cut(s, "+") // build metadata does not order
	for i, part := range strings.Split(s, ".") {
		if i >= 3 {
			return v, fmt.Errorf("%q: more than three numbers", s)
		}
		if part == "x" || part == "X" || part == "*" {
			break
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return v, fmt.Errorf("%q is not a version", s)
		}
		v.num[i], v.n = n, i+1
	}
	if v.n == 0 {
		return v, fmt.Errorf("%q is not a version", s)
	}
	return v, nil
}

// cmp orders a and b by their numbers, then a pre-release before its release.
func (a semver) cmp(b semver) int {
	for i := range 3 {
		if a.num[i] != b.num[i] {
			if a.num[i] < b.num[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case a.pre == b.pre:
		return 0
	case a.pre == "":
		return 1
	case b.pre == "":
		return -1
	case a.pre < b.pre:
		return -1
	}
	return 1
}

// prefix reports whether v starts with p's given numbers.
func (p semver) prefix(v semver) bool {
	for i := range p.n {
		if v.num[i] != p.num[i] {
			return false
		}
	}
	return true
}

// pinMatches reports whether version satisfies every term of pin.
func pinMatches(pin, version string) (bool, error) {
	terms := strings.Fields(pin)
	if len(terms) == 0 {
		return false, fmt.Errorf("empty range")
	}
	if version == "" {
		return false, nil
	}
	v, err := parseSemver(version)
	if err != nil {
		return false, nil // an image without a readable version is not in any range
	}
	prereleaseNamed := false
	for _, term := range terms {
		op := strings.TrimRight(term[:min(len(term), 2)], "0123456789vxX.*")
		want, err := parseSemver(term[len(op):])
		if err != nil {
			return false, err
		}
		prereleaseNamed = prereleaseNamed || want.pre != ""
		var ok bool
		switch op {
		case "":
			ok = want.prefix(v) && (want.n < 3 || want.pre == "" || v.pre == want.pre)
		case "=":
			ok = v.cmp(want) == 0
		case ">=":
			ok = v.cmp(want) >= 0
		case ">":
			ok = v.cmp(want) > 0
		case "<=":
			ok = v.cmp(want) <= 0
		case "<":
			ok = v.cmp(want) < 0
		case "~":
			want.n = min(want.n, 2)
			ok = want.prefix(v) && v.cmp(want) >= 0
		case "^":
			want.n = 1
			ok = want.prefix(v) && v.cmp(want) >= 0
		default:
			return false, fmt.Errorf("%q: unknown operator %q", term, op)
		}
		if !ok {
			return false, nil
		}
	}
	return v.pre == "" || prereleaseNamed, nil
}
