// Command crashchild replicates a vaultsim data folder while a vaultsim
// workload writes to it, until it is killed. TestReplicator_SurvivesKill
// builds it and kills it with SIGKILL at random moments.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vwstream/vwstream/internal/dbrepl"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

func main() {
	dir := flag.String("dir", "", "data folder (created on first run)")
	storeRoot := flag.String("store", "", "local store folder, or s3://BUCKET/PREFIX on the test server named by VWSTREAM_TEST_S3_*")
	ledger := flag.String("ledger", "", "workload ledger file")
	sync := flag.Duration("sync", time.Second, "sync interval")
	seed := flag.Int64("seed", 1, "workload seed")
	flag.Parse()
	if err := run(*dir, *storeRoot, *ledger, *sync, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "crashchild:", err)
		os.Exit(1)
	}
}

func run(dir, storeRoot, ledger string, sync time.Duration, seed int64) error {
	ctx := context.Background()
	var v *vaultsim.Vault
	var err error
	if _, statErr := os.Stat(filepath.Join(dir, vaultsim.DBName)); os.IsNotExist(statErr) {
		v, err = vaultsim.Create(dir, vaultsim.Options{Seed: 1})
	} else {
		v, err = vaultsim.Open(dir)
	}
	if err != nil {
		return err
	}
	store, err := openStore(ctx, storeRoot)
	if err != nil {
		return err
	}
	st, err := dbrepl.State(ctx, v.DBPath(), store)
	if err != nil {
		return err
	}
	if st.State == dbrepl.StateStale {
		return fmt.Errorf("refusing to start: %s", st.Message)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := dbrepl.New(dbrepl.Options{DBPath: v.DBPath(), Store: store, SyncInterval: sync, Logger: logger})
	if err != nil {
		return err
	}
	if err := r.Start(ctx); err != nil {
		return err
	}
	// Upload what the killed predecessor left in the WAL before writing more.
	if err := r.Sync(ctx); err != nil {
		return err
	}
	fmt.Println("ready", st.State)
	w := vaultsim.NewWorkload(v, vaultsim.WorkloadOptions{
		Rate: 200, Burst: 10, Writers: 4, Seed: seed, Ledger: ledger,
		AttachmentRatio: -1, SendRatio: -1,
	})
	_, err = w.Run(ctx)
	return err
}

// openStore opens a local folder, or with s3://BUCKET/PREFIX a bucket on the
// test server whose address and keys the test's environment holds (the
// parent's testenv.NewS3 read them from the same variables).
func openStore(ctx context.Context, root string) (objstore.Store, error) {
	rest, ok := strings.CutPrefix(root, "s3://")
	if !ok {
		return objstore.NewLocal(root)
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	region := os.Getenv(testenv.EnvRegion)
	if region == "" {
		region = "us-east-1"
	}
	return objstore.NewS3(ctx, objstore.S3Options{
		Endpoint: os.Getenv(testenv.EnvEndpoint), Region: region, Bucket: bucket, Prefix: prefix,
		AccessKeyID: os.Getenv(testenv.EnvAccessKey), SecretAccessKey: os.Getenv(testenv.EnvSecretKey),
		ForcePathStyle: true, Logger: slog.New(slog.DiscardHandler),
	})
}
