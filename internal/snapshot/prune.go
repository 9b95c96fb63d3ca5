package snapshot

import (
	"sort"
	"time"
)

// Retention says which snapshots of a destination may be deleted.
type Retention struct {
	Days    int           // delete snapshots older than this many days; 0 keeps all
	MinKeep int           // always keep this many newest good (not degraded) snapshots
	Leeway  time.Duration // extra age before a snapshot counts as expired
}

// Candidate is one of our snapshots in a destination, as prune judges it.
type Candidate struct {
	Name     string    // archive name without the snapshots/ prefix
	Time     time.Time // capture time from the name
	Degraded bool      // known degraded from its sidecar
}

// Expired returns the names to delete from candidates at now. It never returns
// keep (the snapshot just verified), nor any of the MinKeep newest good
// snapshots, nor anything younger than Days plus Leeway. Candidates must be our
// own names: foreign objects and the -latest copy are never passed in.
func (r Retention) Expired(candidates []Candidate, keep string, now time.Time) []string {
	if r.Days <= 0 {
		return nil
	}
	sorted := append([]Candidate(nil), candidates...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Time.After(sorted[j].Time) })
	cutoff := now.Add(-time.Duration(r.Days)*24*time.Hour - r.Leeway)
	var out []string
	good := 0
	for _, c := range sorted {
		protected := c.Name == keep
		if !c.Degraded && good < r.MinKeep {
			good++
			protected = true
		}
		if protected || !c.Time.Before(cutoff) {
			continue
		}
		out = append(out, c.Name)
	}
	return out
}
