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
		if got := (Options{LabelEnable: true}).watched(c.labels); got != c.enable {
			t.Errorf("%v with WATCHTOWER_LABEL_ENABLE=true: %t", c.labels, got)
		}
		if got := (Options{LabelEnable: false}).watched(c.labels); got != c.other {
			t.Errorf("%v with WATCHTOWER_LABEL_ENABLE=false: %t", c.labels, got)
		}
	}
}
