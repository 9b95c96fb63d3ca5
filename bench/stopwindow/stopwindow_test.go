// Package stopwindow_test measures how long a labelled container is stopped
// for a snapshot: vwstream (database online copy and the files spooled beside
// the data, restart, then compress, encrypt and upload) against
// docker-volume-backup's way (stop, tar + gzip into a temporary archive,
// restart, then encrypt and upload), on the same data in the same container.
// It is opt-in:
//
//	VWSTREAM_BENCH=1 go test ./bench/stopwindow -run TestStopWindow -v -timeout 30m
//
// VWSTREAM_BENCH_MB sets the data size (default 1024: a 1 GB folder).
// Results are recorded in RESULTS.md.
package stopwindow_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/docker"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/quiesce"
	"github.com/vwstream/vwstream/internal/snapshot"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

func TestStopWindow(t *testing.T) {
	if os.Getenv("VWSTREAM_BENCH") != "1" {
		t.Skip("set VWSTREAM_BENCH=1 to run the benchmark")
	}
	mb := 1024
	if s := os.Getenv("VWSTREAM_BENCH_MB"); s != "" {
		var err error
		if mb, err = strconv.Atoi(s); err != nil {
			t.Fatalf("VWSTREAM_BENCH_MB=%q: %v", s, err)
		}
	}
	tar := testenv.Tool(t, "tar")
	testenv.Tool(t, "gzip") // tar z runs it
	testenv.Docker(t)

	work, err := os.MkdirTemp("/var/tmp", "vwstream-bench-stopwindow-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	data := filepath.Join(work, "data")
	// About 10 % database, the rest attachments of 1 MiB of random bytes
	// (Bitwarden encrypts them client-side: incompressible).
	v, err := vaultsim.Create(data, vaultsim.Options{Seed: 1, Size: vaultsim.SizeLarge, Ciphers: 440 * mb / 10, Events: 660 * mb / 10,
		Attachments: mb * 9 / 10, AttachmentMinSize: 1 << 20, AttachmentMaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	size := folderBytes(t, data)

	prefix := testenv.UniqueName(t)
	box := testenv.StaticBinary(t, "github.com/vwstream/vwstream/internal/docker/testdata/box", t.TempDir())
	testenv.BuildImage(t, prefix+":box", "FROM scratch\nCOPY box /box\nENTRYPOINT [\"/box\"]\nCMD [\"run\"]\n", map[string]string{"box": box})
	name := prefix + "-vaultwarden"
	testenv.RemoveContainers(t, name)
	testenv.DockerRun(t, "run", "-d", "--name", name, "--label", quiesce.LabelStop+"=true", "-v", data+":/data", prefix+":box")

	ctx := context.Background()
	c, err := docker.New(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// docker-volume-backup's way: stop, tar czf to a temporary file, start.
	archive := filepath.Join(work, "backup.tar.gz")
	start := time.Now()
	if err := c.Stop(ctx, name, 0); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tar, "czf", archive, "-C", data, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	if err := c.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	dvbWindow := time.Since(start)
	fi, err := os.Stat(archive)
	if err != nil {
		t.Fatal(err)
	}
	dvbTemp := fi.Size() // and as much again for the encrypted copy made next
	os.Remove(archive)

	// vwstream: the snapshot run with the container operations; the window
	// is what the run reports (stop call to start answer).
	store, err := objstore.NewLocal(filepath.Join(work, "target"))
	if err != nil {
		t.Fatal(err)
	}
	o := snapshot.Options{Source: snapshot.SourceFromFolder(data), Quiesce: quiesce.Options{Docker: c}.Quiesce}
	res, err := snapshot.Run(ctx, o, []snapshot.Destination{{Name: "target", Store: store}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Containers) != 1 {
		t.Fatalf("containers: %+v", res.Containers)
	}
	vwWindow := time.Duration(res.Containers[0].Seconds * float64(time.Second))
	vwTemp := res.SpoolBytes + res.DBCopyBytes

	t.Logf("data %d MiB: stop window vwstream %s, docker-volume-backup way %s, ratio %.2f",
		size>>20, vwWindow.Round(time.Millisecond), dvbWindow.Round(time.Millisecond), vwWindow.Seconds()/dvbWindow.Seconds())
	t.Logf("peak temp disk: vwstream %d MiB (spool %d + db copy %d), docker-volume-backup way %d MiB (the tar.gz; its encrypted copy doubles it)",
		vwTemp>>20, res.SpoolBytes>>20, res.DBCopyBytes>>20, dvbTemp>>20)
}

func folderBytes(t *testing.T, dir string) int64 {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
