// Command vwsync is the vwstream side of the file sync benchmark's first sync
// (bench/filesync): a process, built without -race like the shipped binary and
// timed from start to exit like rclone, that opens internal/filesync on a data
// folder, waits until the first reconcile has stored every file, closes the
// syncer (its final manifest save included) and exits.
//
//	VWSYNC_ACCESS_KEY=... VWSYNC_SECRET_KEY=... vwsync -endpoint URL -bucket B -prefix P -data DIR -state DIR -files N
//
// The credentials come from the environment, never from the command line.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"time"

	"github.com/vwstream/vwstream/internal/filesync"
	"github.com/vwstream/vwstream/internal/objstore"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "vwsync:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		endpoint    = flag.String("endpoint", "", "S3 endpoint URL")
		region      = flag.String("region", "us-east-1", "S3 region")
		bucket      = flag.String("bucket", "", "bucket")
		prefix      = flag.String("prefix", "vw", "key prefix")
		data        = flag.String("data", "", "data folder holding attachments/")
		state       = flag.String("state", "", "state folder (the manifest)")
		files       = flag.Int64("files", 0, "files the first sync must store")
		parallelism = flag.Int("parallelism", 0, "uploads in flight (0: the default)")
		cpuprofile  = flag.String("cpuprofile", "", "write a CPU profile here")
		timeout     = flag.Duration("timeout", 5*time.Minute, "give up after")
		verbose     = flag.Bool("v", false, "log file sync's debug messages and the phases to stderr")
	)
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	store, err := objstore.NewS3(ctx, objstore.S3Options{
		Endpoint: *endpoint, Region: *region, Bucket: *bucket, Prefix: *prefix,
		AccessKeyID: os.Getenv("VWSYNC_ACCESS_KEY"), SecretAccessKey: os.Getenv("VWSYNC_SECRET_KEY"),
		ForcePathStyle: true,
	})
	if err != nil {
		return err
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	start := time.Now()
	s, err := filesync.Open(ctx, filesync.Options{
		Logger: logger,
		Store:  store, DataDir: *data, StateDir: *state,
		Includes:          filesync.Layout{DataDir: *data, Attachments: true}.Includes(),
		ReconcileInterval: time.Hour, Parallelism: *parallelism,
	})
	if err != nil {
		return err
	}
	for {
		st := s.Status()
		if st.LastReconcile.After(start) && st.Pending == 0 && st.FilesUploaded >= *files {
			break
		}
		if ctx.Err() != nil {
			s.Close(context.Background())
			return fmt.Errorf("first sync not done after %s: %+v", *timeout, st)
		}
		time.Sleep(2 * time.Millisecond)
	}
	logger.Debug("vwsync: first sync stored", "took", time.Since(start))
	if err := s.Close(ctx); err != nil {
		return err
	}
	logger.Debug("vwsync: closed", "took", time.Since(start))
	st := s.Status()
	if st.Error != "" {
		return fmt.Errorf("first sync: %s", st.Error)
	}
	fmt.Printf("files %d bytes %d\n", st.FilesUploaded, st.BytesUploaded)
	return nil
}
