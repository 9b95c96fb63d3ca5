package update

import "testing"

func TestPinMatches(t *testing.T) {
	for _, c := range []struct {
		pin, version string
		want         bool
	}{
		{"1", "1.32.4", true},
		{"1", "2.0.0", false},
		{"1.32", "1.32.9", true},
		{"1.32", "1.33.0", false},
		{"1.x", "v1.40.1", true},
		{"1.32.x", "1.32.0", true},
		{"~1.32.2", "1.32.5", true},
		{"~1.32.2", "1.32.1", false},
		{"~1.32.2", "1.33.0", false},
		{"^1.30.0", "1.34.1", true},
		{"^1.30.0", "1.29.9", false},
		{"^1.30.0", "2.0.0", false},
		{">=1.30 <2", "1.99.0", true},
		{">=1.30 <2", "2.0.0", false},
		{">=1.30 <2", "1.29.0", false},
		{"=1.32.0", "1.32.0", true},
		{"1", "1.33.0-beta", false}, // a pre-release only when the range names one
		{">=1.33.0-alpha <2", "1.33.0-beta", true},
		{"1", "", false},       // no version label: outside any range
		{"1", "latest", false}, // not a version
	} {
		got, err := pinMatches(c.pin, c.version)
		if err != nil || got != c.want {
			t.Errorf("pinMatches(%q, %q) = %v, %v; want %v", c.pin, c.version, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "!1", ">=one", "1.2.3.4"} {
		if _, err := pinMatches(bad, "1.0.0"); err == nil {
			t.Errorf("pin %q accepted", bad)
		}
	}
}
