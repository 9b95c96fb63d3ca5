package config

import "testing"

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "2147483648": 2147483648, "2GB": 2e9, "500 MB": 500e6,
		"1.5GiB": 3 << 29, "64kib": 64 << 10, "1TB": 1e12, "10b": 10} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GB", "2XB", "-1", "1e3", "9999999TB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}
