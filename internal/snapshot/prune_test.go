package snapshot_test

import (
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/snapshot"
)

func TestRetention_Expired(t *testing.T) {
	loc := time.FixedZone("CET", 3600)
	namer, err := snapshot.NewNamer(snapshot.DefaultFilename, loc)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 3, 31, 0, 0, 0, 0, loc)
	// daily snapshots at midnight for 40 days before now, named in loc
	var daily []string
	for d := 0; d <= 40; d++ {
		daily = append(daily, namer.Base(now.AddDate(0, 0, -d))+".tar.gz.gpg")
	}
	foreign := []string{"vaultwarden-latest.tar.gz.gpg", "notes.txt", "vaultwarden-2025.tar.gz",
		"other-20200101-000000.tar.gz", daily[35] + ".json", "vaultwarden-20200101-000000.zip"}
	all := append(slices.Clone(daily), foreign...)

	cases := []struct {
		name     string
		r        snapshot.Retention
		keep     string
		degraded []string
		now      time.Time
		want     []string
	}{
		{"days 0 keeps all", snapshot.Retention{Days: 0, MinKeep: 0}, "", nil, now, nil},
		{"30 days", snapshot.Retention{Days: 30, MinKeep: 3}, daily[0], nil, now, daily[31:]},
		{"exactly 30 days old is kept", snapshot.Retention{Days: 30}, "", nil, now, daily[31:]},
		{"leeway keeps one more day", snapshot.Retention{Days: 30, Leeway: 25 * time.Hour}, "", nil, now, daily[32:]},
		{"within the leeway", snapshot.Retention{Days: 30, Leeway: time.Minute}, "", nil, now.Add(30 * time.Second), daily[31:]},
		{"past the leeway", snapshot.Retention{Days: 30, Leeway: time.Minute}, "", nil, now.Add(2 * time.Minute), daily[30:]},
		{"min keep beats age", snapshot.Retention{Days: 1, MinKeep: 10}, "", nil, now.AddDate(1, 0, 0), daily[10:]},
		{"min keep counts good ones only", snapshot.Retention{Days: 1, MinKeep: 2}, "", daily[0:2], now.AddDate(1, 0, 0),
			append(slices.Clone(daily[0:2]), daily[4:]...)},
		{"the last verified is never deleted", snapshot.Retention{Days: 1, MinKeep: 0}, daily[5], nil, now.AddDate(1, 0, 0),
			append(slices.Clone(daily[0:5]), daily[6:]...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cands []snapshot.Candidate
			for _, n := range all {
				ts, ok := namer.Parse(n)
				if !ok {
					continue
				}
				cands = append(cands, snapshot.Candidate{Name: n, Time: ts, Degraded: slices.Contains(tc.degraded, n)})
			}
			if len(cands) != len(daily) {
				t.Fatalf("%d names parsed, want the %d daily ones only", len(cands), len(daily))
			}
			got := tc.r.Expired(cands, tc.keep, tc.now)
			sort.Strings(got)
			want := slices.Clone(tc.want)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Fatalf("expired %v\nwant %v", got, want)
			}
		})
	}
}

func TestNamer_Parse(t *testing.T) {
	loc := time.FixedZone("X", -5*3600)
	at := time.Date(2025, 7, 4, 13, 5, 9, 0, time.UTC)
	for _, pattern := range []string{snapshot.DefaultFilename, "vw_%y-%m-%d_%H%M%S", "bk-%s", "%Y-%j-%H%M%S%z", "weird.%Y%m%d.%H%M%S%%"} {
		n, err := snapshot.NewNamer(pattern, loc)
		if err != nil {
			t.Fatalf("%s: %v", pattern, err)
		}
		name := n.Base(at) + ".tar.zst.age"
		got, ok := n.Parse(name)
		if !ok || !got.Equal(at) {
			t.Errorf("%s: Parse(%q) = %v, %v; want %v", pattern, name, got, ok, at)
		}
		if _, ok := n.Parse(name + ".json"); ok {
			t.Errorf("%s: the sidecar name parses as a snapshot", pattern)
		}
	}
}
