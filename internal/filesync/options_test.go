package filesync_test

import (
	"testing"

	"github.com/vwstream/vwstream/internal/filesync"
)

// Folders configured outside the data folder keep their names under files/,
// and the config include covers config.json and every rsa_key* file.
func TestLayout_Includes(t *testing.T) {
	inc := filesync.Layout{
		DataDir: "/data", AttachmentsFolder: "/srv/att", RSAKeyFilename: "/keys/jwt",
		Attachments: true, Sends: true, Config: true,
	}.Includes()
	want := []filesync.Include{
		{Name: "attachments", Path: "/srv/att", Dir: true},
		{Name: "sends", Path: "/data/sends", Dir: true},
		{Name: "config.json", Path: "/data/config.json"},
		{Name: "jwt.pem", Path: "/keys/jwt.pem"},
		{Name: "jwt.pub.pem", Path: "/keys/jwt.pub.pem"},
		{Name: "jwt.der", Path: "/keys/jwt.der"},
		{Name: "jwt.pub.der", Path: "/keys/jwt.pub.der"},
	}
	if len(inc) != len(want) {
		t.Fatalf("Includes() = %+v, want %+v", inc, want)
	}
	for i := range want {
		if inc[i] != want[i] {
			t.Errorf("include %d = %+v, want %+v", i, inc[i], want[i])
		}
	}
}
