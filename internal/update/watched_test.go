package update

import "testing"

// TestWatched: WATCHTOWER_LABEL_ENABLE's two rules over both labels.
func TestWatched(t *testing.T) {
	for _, c := range []struct {
		labels        map[string]string
		enable, other bool // watched with LabelEnable true, false
	}{
		{nil, false, true},
		{map[string]string{LabelEnable: "true"}, true, true},
		{map[string]string{LabelWatchtowerEnable: "true"}, true, true},
		{map[string]string{LabelEnable: "false"}, false, false},
		{map[string]string{LabelWatchtowerEnable: "false"}, false, false},
		{map[string]string{LabelEnable: "false", LabelWatchtowerEnable: "true"}, false, false}, // vwstream's own label wins
		{map[string]string{"other": "true"}, false, true},
	} {
		if got := (Options{LabelEnable: true}).watched("app", c.labels); got != c.enable {
			t.Errorf("%v with WATCHTOWER_LABEL_ENABLE=true: %t", c.labels, got)
		}
		if got := (Options{LabelEnable: false}).watched("app", c.labels); got != c.other {
			t.Errorf("%v with WATCHTOWER_LABEL_ENABLE=false: %t", c.labels, got)
		}
	}
}

// TestWatched_ScopeAndAside: with a scope only containers labelled with it
// (vwstream's label or Watchtower's) are watched; a container renamed aside
// by an update in progress never is.
func TestWatched_ScopeAndAside(t *testing.T) {
	o := Options{LabelEnable: true, Scope: "stack-a"}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   bool
	}{
		{"app", map[string]string{LabelEnable: "true", LabelScope: "stack-a"}, true},
		{"app", map[string]string{LabelEnable: "true", LabelWatchtowerScope: "stack-a"}, true},
		{"app", map[string]string{LabelEnable: "true", LabelScope: "stack-b"}, false},
		{"app", map[string]string{LabelEnable: "true"}, false},
		{"app" + AsideSuffix, map[string]string{LabelEnable: "true", LabelScope: "stack-a"}, false},
	} {
		if got := o.watched(c.name, c.labels); got != c.want {
			t.Errorf("%s %v: watched %t, want %t", c.name, c.labels, got, c.want)
		}
	}
	if (Options{LabelEnable: true}).watched("app"+AsideSuffix, map[string]string{LabelEnable: "true"}) {
		t.Error("an aside container is watched without a scope")
	}
}
