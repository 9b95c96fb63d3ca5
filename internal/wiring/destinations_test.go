package wiring_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/bucket"
	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
	"github.com/vwstream/vwstream/internal/wiring"
)

// Extra remotes from RCLONE_CONFIG_*: a local one receives a verified copy, an
// sftp one on a closed port fails the run naming it, and the main copy is
// stored, verified and pointed to by -latest all the same.
func TestDestinations_RcloneRemotes(t *testing.T) {
	dir := newVault(t)
	offsite := t.TempDir()
	cfg := &config.Config{
		DataFolder:  dir,
		DBPath:      filepath.Join(dir, "db.sqlite3"),
		LocalTarget: t.TempDir(),
		Backup: config.BackupConfig{Filename: snapshot.DefaultFilename, Compression: "gz", Verify: true, RequireAll: true,
			IncludeAttachments: true, IncludeSends: true, IncludeConfig: true,
			ExtraRemotes: []string{"disk:" + offsite, "box:backups"}},
		Vaultwarden: config.VaultwardenConfig{AttachmentsFolder: filepath.Join(dir, "attachments"),
			SendsFolder: filepath.Join(dir, "sends"), RSAKeyFilename: filepath.Join(dir, "rsa_key")},
		Rclone: map[string]map[string]string{
			"disk": {"type": "local"},
			"box":  {"type": "sftp", "host": "127.0.0.1", "port": strings.Split(testenv.FreeAddr(t), ":")[1], "user": "vw", "pass": "plain password"},
		},
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	main, err := bucket.Open(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	dests := wiring.Destinations(ctx, cfg, main, log)
	namer, err := wiring.Namer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := wiring.SnapshotOptions(cfg, "test", namer, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	res, err := snapshot.Run(ctx, opts, dests)
	if err == nil || !strings.Contains(err.Error(), "box:backups") || strings.Contains(err.Error(), "disk:") {
		t.Fatalf("Run error %v, want one naming box:backups only", err)
	}
	if strings.Contains(err.Error(), "plain password") {
		t.Fatalf("error shows the password: %v", err)
	}
	if d := res.Destinations[0]; !d.OK || d.Verified != snapshot.VerifiedArchive {
		t.Fatalf("main destination %+v, want ok and verified", d)
	}
	if d := res.Destinations[1]; !d.OK || d.Latest == "" {
		t.Fatalf("local rclone destination %+v, want ok with a -latest copy", d)
	}
	for _, name := range []string{res.Name, res.Name + ".json", d1Latest(res)} {
		if _, err := os.Stat(filepath.Join(offsite, "snapshots", name)); err != nil {
			t.Errorf("rclone destination lacks %s: %v", name, err)
		}
	}
	if d := res.Destinations[2]; d.OK || d.Error == "" {
		t.Fatalf("sftp destination %+v, want failed", d)
	}
}

func d1Latest(res *snapshot.Result) string { return res.Destinations[1].Latest }

func newVault(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	v, err := vaultsim.Create(dir, vaultsim.Options{Seed: 7, Attachments: 12, AttachmentMaxSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}
