package wiring_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/wiring"
)

func TestStatusLimits(t *testing.T) {
	load := func(env ...string) *config.Config {
		cfg, err := config.Load(nil, env, os.ReadFile)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	if got := wiring.StatusLimits(load("BACKUP_ENABLED=true")); got.MaxSyncAge != 10*time.Minute || got.MaxSnapshotAge != 48*time.Hour {
		t.Errorf("primary with backups: %+v", got)
	}
	if got := wiring.StatusLimits(load()); got.MaxSnapshotAge != 0 {
		t.Errorf("primary without backups checks snapshots: %+v", got)
	}
	if got := wiring.StatusLimits(load("NODE_ROLE=secondary", "BACKUP_ENABLED=true", "SECONDARY_SYNC_INTERVAL=3600")); got.MaxSyncAge != 70*time.Minute || got.MaxSnapshotAge != 0 {
		t.Errorf("persistent secondary: %+v; want pulls checked at interval + max age, no snapshots", got)
	}
	if got := wiring.StatusLimits(load("NODE_ROLE=secondary", "DEPLOYMENT_MODE=serverless")); got.MaxSyncAge != 0 {
		t.Errorf("serverless secondary: %+v; want no sync age rule", got)
	}
}

// A drill restores what this host can read: snapshots with a passphrase (or
// with backups on), not those sealed to public keys; no replica of a server
// database.
func TestDrillOptions(t *testing.T) {
	load := func(env ...string) *config.Config {
		cfg, err := config.Load(nil, env, os.ReadFile)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	local, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env                []string
		replica, snapshots bool
		note               string
	}{
		{[]string{"GPG_PASSPHRASE=x"}, true, true, ""},
		{nil, true, false, ""},
		{[]string{"BACKUP_ENABLED=true", "AGE_PUBLIC_KEYS=age1zvqw0x4aclvk3gu3ggj9hy7qlw89vuup80d0pnqvdyhxg7wcjggszcyack"}, true, false, "public keys"},
		{[]string{"GPG_PASSPHRASE=x", "DATABASE_URL=postgres://vw:pw@db/vw"}, false, true, "server database"},
	} {
		o, err := wiring.DrillOptions(load(tc.env...), local, local)
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		if (o.Data != nil) != tc.replica || (o.Snapshots != nil) != tc.snapshots || !strings.Contains(o.Note, tc.note) {
			t.Errorf("%v: replica %v, snapshots %v, note %q", tc.env, o.Data != nil, o.Snapshots != nil, o.Note)
		}
	}
}
