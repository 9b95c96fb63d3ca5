package snapshot_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

func newS3(t *testing.T) objstore.Store {
	t.Helper()
	env := testenv.NewS3(t)
	s, err := objstore.NewS3(t.Context(), objstore.S3Options{Endpoint: env.Endpoint, Region: env.Region, Bucket: env.Bucket,
		Prefix: "vaultwarden", AccessKeyID: env.AccessKey, SecretAccessKey: env.SecretKey, ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A snapshot taken while Vaultwarden-shaped writers run is consistent: the
// database passes integrity_check, and every attachment row captured has its
// file in the archive unless the snapshot says it is degraded.
func TestRun_S3WhileWriting(t *testing.T) {
	store := newS3(t)
	dir := filepath.Join(t.TempDir(), "data")
	v, err := vaultsim.Create(dir, vaultsim.Options{Seed: 3, Attachments: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx, cancel := context.WithCancel(t.Context())
	w := vaultsim.NewWorkload(v, vaultsim.WorkloadOptions{Rate: 200, Writers: 2, AttachmentRatio: 0.3,
		AttachmentMinSize: 64 << 10, AttachmentMaxSize: 256 << 10, ChunkDelay: 5 * time.Millisecond})
	done := make(chan error, 1)
	go func() { _, err := w.Run(ctx); done <- err }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("workload: %v", err)
		}
	}()
	time.Sleep(300 * time.Millisecond)

	opts := snapshot.Options{Encrypter: encrypter(t, seal.SnapshotOptions{Mode: seal.SnapshotAgePassphrase, AgePassphrase: testPassphrase})}
	var results []*snapshot.Result
	for i := 0; i < 3; i++ {
		at := time.Date(2025, 1, 1, 0, 0, i, 0, time.UTC)
		opts.Now = func() time.Time { return at }
		results = append(results, takeSnapshot(t, dir, opts, snapshot.Destination{Name: "target", Store: store, Verify: true}))
		time.Sleep(100 * time.Millisecond)
	}
	if w.Stats().Tx == 0 {
		t.Fatal("the workload wrote nothing during the snapshots")
	}
	for _, res := range results {
		if res.Destinations[0].Verified != snapshot.VerifiedArchive {
			t.Fatalf("%s verified %q", res.Name, res.Destinations[0].Verified)
		}
		got, err := snapshot.Restore(t.Context(), snapshot.RestoreOptions{Store: store, Name: res.Name, DryRun: true,
			Keys: seal.SnapshotKeys{AgePassphrase: testPassphrase}})
		if err != nil {
			t.Fatalf("restore drill %s: %v", res.Name, err)
		}
		if got.Integrity != "ok" {
			t.Fatalf("%s integrity %q", res.Name, got.Integrity)
		}
		if got.MissingAttachments > 0 && !got.Degraded {
			t.Fatalf("%s: %d attachment rows without a file, yet not degraded", res.Name, got.MissingAttachments)
		}
		if got.MissingAttachments != res.MissingAttachments {
			t.Fatalf("%s: %d missing attachments found on restore, %d recorded", res.Name, got.MissingAttachments, res.MissingAttachments)
		}
	}
	infos, err := snapshot.List(t.Context(), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 || infos[0].Name != results[2].Name || !infos[0].Sidecar || infos[0].Encryption != "age" {
		t.Fatalf("List = %+v, want the 3 snapshots newest first with sidecars", infos)
	}
}

// A failing extra destination fails the run, naming it, while the first copy
// is stored, verified and pointed to by -latest; with RequireAll off the run
// succeeds.
func TestRun_FailingExtraDestination(t *testing.T) {
	dir := newVault(t)
	main := newS3(t)
	bad, err := objstore.NewS3(t.Context(), objstore.S3Options{Endpoint: "http://" + testenv.FreeAddr(t), Region: "us-east-1",
		Bucket: "nowhere", AccessKeyID: "k", SecretAccessKey: "s", ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	opts := snapshot.Options{Source: snapshot.SourceFromFolder(dir), RequireAll: true}
	dests := []snapshot.Destination{{Name: "target", Store: main, Verify: true}, {Name: "offsite:vw", Store: bad}}
	res, err := snapshot.Run(ctx, opts, dests)
	if err == nil || !strings.Contains(err.Error(), "offsite:vw") {
		t.Fatalf("Run error %v, want one naming offsite:vw", err)
	}
	if d := res.Destinations[0]; !d.OK || d.Verified != snapshot.VerifiedArchive || d.Latest == "" {
		t.Fatalf("first destination %+v, want ok, verified and a -latest copy", d)
	}
	if d := res.Destinations[1]; d.OK || d.Error == "" {
		t.Fatalf("extra destination %+v, want failed", d)
	}
	if _, err := main.Stat(t.Context(), layout.Snapshots+res.Name); err != nil {
		t.Fatalf("first copy: %v", err)
	}
	opts.RequireAll = false
	opts.Now = func() time.Time { return time.Now().Add(time.Hour) }
	if _, err := snapshot.Run(ctx, opts, dests); err != nil {
		t.Fatalf("Run with RequireAll off: %v", err)
	}
}
