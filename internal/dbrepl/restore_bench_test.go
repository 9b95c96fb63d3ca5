package dbrepl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/objstore/storetest"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/testenv"
)

// BenchmarkRestore_S3 restores a database of VWSTREAM_BENCH_RESTORE_MB
// (default 100) from the test S3 server, unencrypted and sealed, to compare
// the two paths; it reports requests per restore. Opt-in: it spends a minute
// building and uploading the replica.
func BenchmarkRestore_S3(b *testing.B) {
	mb, _ := strconv.Atoi(os.Getenv("VWSTREAM_BENCH_RESTORE_MB"))
	if mb <= 0 {
		b.Skip("set VWSTREAM_BENCH_RESTORE_MB to run")
	}
	for _, sealedStore := range []bool{false, true} {
		name := "plain"
		if sealedStore {
			name = "sealed"
		}
		b.Run(name, func(b *testing.B) {
			env := testenv.NewS3(b)
			s, err := objstore.NewS3(context.Background(), objstore.S3Options{
				Endpoint: env.Endpoint, Region: env.Region, Bucket: env.Bucket, Prefix: "bench",
				AccessKeyID: env.AccessKey, SecretAccessKey: env.SecretKey, ForcePathStyle: true,
			})
			if err != nil {
				b.Fatal(err)
			}
			var store objstore.Store = s
			if sealedStore {
				key, err := seal.GenerateKey()
				if err != nil {
					b.Fatal(err)
				}
				store = seal.NewStore(s, key)
			}
			replicateSize(b, store, mb)
			counted := storetest.NewCounting(store)
			b.ResetTimer()
			for i := range b.N {
				out := filepath.Join(b.TempDir(), "out"+strconv.Itoa(i)+".sqlite3")
				if _, err := Restore(context.Background(), RestoreOptions{Store: counted, OutputPath: out}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(counted.Total())/float64(b.N), "requests/op")
			b.SetBytes(int64(mb) << 20)
		})
	}
}

// replicateSize fills a database with about mb MiB of half-compressible rows
// and replicates it to store.
func replicateSize(b *testing.B, store objstore.Store, mb int) {
	b.Helper()
	path := tempDB(b)
	db := openTestDB(b, path)
	r := startReplicator(b, path, store)
	buf := make([]byte, 512)
	const perTx = 2000
	rows := mb << 20 / (2 * len(buf))
	for from := 0; from < rows; from += perTx {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		for id := from; id < from+perTx; id++ {
			_, _ = rand.Read(buf)
			if _, err := tx.Exec(`INSERT INTO items (id, body) VALUES (?, ?)`, id, hex.EncodeToString(buf)); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	if err := r.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}
