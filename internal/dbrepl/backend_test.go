package dbrepl

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/testenv"
)

// replicateAndRestore replicates 5 batches to store and checks a restore.
func replicateAndRestore(t *testing.T, store objstore.Store) {
	t.Helper()
	path := tempDB(t)
	db := openTestDB(t, path)
	r := startReplicator(t, path, store)
	var local uint64
	for i := range 5 {
		insertBatch(t, db, i*100, (i+1)*100)
		local = waitSynced(t, r, local+1).LocalTXID
	}
	insertBatch(t, db, 500, 510)
	if err := r.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}
	out := filepath.Join(t.TempDir(), "db.sqlite3")
	res, err := Restore(context.Background(), RestoreOptions{Store: store, OutputPath: out})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got, want := itemIDs(t, out), seq(0, 510); !slices.Equal(got, want) {
		t.Fatalf("restored %d rows, want %d", len(got), len(want))
	}
	if res.TXID <= local {
		t.Fatalf("restored txid %d, want > %d", res.TXID, local)
	}
}

func sealed(t *testing.T, inner objstore.Store) objstore.Store {
	t.Helper()
	key, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return seal.NewStore(inner, key)
}

func TestReplicator_LocalStore(t *testing.T) {
	local, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("plain", func(t *testing.T) { replicateAndRestore(t, local) })
	t.Run("sealed", func(t *testing.T) {
		inner, err := objstore.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		replicateAndRestore(t, sealed(t, inner))
	})
	t.Run("sealed point in time", func(t *testing.T) {
		inner, err := objstore.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		checkPointInTime(t, sealed(t, inner), 3)
	})
}

func newS3(t *testing.T, prefix string) (objstore.Store, testenv.S3) {
	t.Helper()
	env := testenv.NewS3(t)
	s, err := objstore.NewS3(context.Background(), objstore.S3Options{
		Endpoint: env.Endpoint, Region: env.Region, Bucket: env.Bucket, Prefix: prefix,
		AccessKeyID: env.AccessKey, SecretAccessKey: env.SecretKey, ForcePathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, env
}

func TestReplicator_S3Store(t *testing.T) {
	t.Run("plain", func(t *testing.T) {
		s, _ := newS3(t, "vaultwarden")
		replicateAndRestore(t, s)
	})
	t.Run("sealed", func(t *testing.T) {
		s, _ := newS3(t, "vaultwarden")
		replicateAndRestore(t, sealed(t, s))
	})
}

// TestReplicator_StockLitestreamRestores checks the key layout contract: the
// stock litestream CLI restores an unencrypted replica from <prefix>/db.
func TestReplicator_StockLitestreamRestores(t *testing.T) {
	bin := testenv.Tool(t, "litestream")
	s, env := newS3(t, "vw/prefix")
	path := tempDB(t)
	db := openTestDB(t, path)
	r := startReplicator(t, path, s)
	insertBatch(t, db, 0, 300)
	waitSynced(t, r, 1)
	insertBatch(t, db, 300, 320)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "out.sqlite3")
	u := "s3://" + env.Bucket + "/vw/prefix/db?endpoint=" + url.QueryEscape(env.Endpoint) + "&region=" + env.Region + "&forcePathStyle=true"
	cmd := exec.Command(bin, "restore", "-o", out, u)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+env.AccessKey, "AWS_SECRET_ACCESS_KEY="+env.SecretKey, "AWS_CA_BUNDLE=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("litestream restore: %v\n%s", err, b)
	}
	if got, want := itemIDs(t, out), seq(0, 320); !slices.Equal(got, want) {
		t.Fatalf("stock restore: %d rows, want %d", len(got), len(want))
	}
}
