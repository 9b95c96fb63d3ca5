package update

import (
	"testing"

	"github.com/vwstream/vwstream/internal/docker"
)

// TestProtected: a container is protected when labelled so, or when it mounts
// the data folder: the same host path (or a folder around it or inside it),
// or the volume vwstream's own container mounts it from.
func TestProtected(t *testing.T) {
	self := &docker.ContainerInfo{Mounts: []docker.Mount{
		{Type: "volume", Name: "vw-data", Destination: "/data"},
		{Type: "bind", Source: "/srv/other", Destination: "/other"},
		{Type: "volume", Name: "tmp", Destination: "/tmp"},
	}}
	o := Options{DataMounts: DataMounts(self, "/data")}
	for _, c := range []struct {
		name   string
		cur    current
		expect bool
	}{
		{"label", current{labels: map[string]string{LabelProtected: "true"}}, true},
		{"label false", current{labels: map[string]string{LabelProtected: "false"}}, false},
		{"same volume", current{mounts: []docker.Mount{{Type: "volume", Name: "vw-data", Destination: "/data"}}}, true},
		{"other volume", current{mounts: []docker.Mount{{Type: "volume", Name: "tmp", Destination: "/data"}}}, false},
		{"unrelated bind", current{mounts: []docker.Mount{{Type: "bind", Source: "/srv/other", Destination: "/data"}}}, false},
		{"nothing", current{}, false},
	} {
		if got := o.protected(&c.cur); got != c.expect {
			t.Errorf("%s: protected = %v, want %v (data mounts %v)", c.name, got, c.expect, o.DataMounts)
		}
	}
	// vwstream on the host: the folder's path, and folders around or inside it.
	o = Options{DataMounts: DataMounts(nil, "/srv/vw/data")}
	for src, want := range map[string]bool{"/srv/vw/data": true, "/srv/vw": true, "/srv/vw/data/attachments": true, "/srv/vw/database": false, "/srv": true, "/srv/v": false} {
		cur := current{mounts: []docker.Mount{{Type: "bind", Source: src, Destination: "/data"}}}
		if got := o.protected(&cur); got != want {
			t.Errorf("bind %s: protected = %v, want %v", src, got, want)
		}
	}
}
