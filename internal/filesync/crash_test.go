package filesync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vwstream/vwstream/internal/filesync"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/testenv"
)

const childEnv = "VWSTREAM_FILESYNC_CHILD"

// TestHelperProcess is the syncer killed by TestSyncer_S3_KillMidUpload: it
// syncs the folder in its environment with slowed-down uploads, forever.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("helper process for TestSyncer_S3_KillMidUpload")
	}
	env := testenv.S3{
		Endpoint: os.Getenv(testenv.EnvEndpoint), AccessKey: os.Getenv(testenv.EnvAccessKey),
		SecretKey: os.Getenv(testenv.EnvSecretKey), Region: os.Getenv(testenv.EnvRegion),
		Bucket: os.Getenv(childEnv + "_BUCKET"),
	}
	dir := os.Getenv(childEnv)
	opts := fastOptions(dir, &slowStore{Store: newS3(t, env, "")})
	opts.Parallelism = 4
	if _, err := filesync.Open(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	select {} // until killed
}

// slowStore uploads big files slowly, so the parent can kill mid-upload.
type slowStore struct{ objstore.Store }

func (s *slowStore) Put(ctx context.Context, key string, r io.Reader, o objstore.PutOptions) (objstore.ObjectInfo, error) {
	return s.Store.Put(ctx, key, &slowReader{r: r}, o)
}

type slowReader struct {
	r io.Reader
	n int
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(p) > 64<<10 {
		p = p[:64<<10]
	}
	n, err := r.r.Read(p)
	r.n += n
	if r.n > 1<<20 {
		time.Sleep(20 * time.Millisecond) // past the first MiB: ~3 MiB/s
	}
	return n, err
}

// Killed with SIGKILL in the middle of uploading, the syncer restarts from its
// manifest and ends with every file in the bucket exactly once with the right
// bytes; the file being uploaded was never visible half written.
func TestSyncer_S3_KillMidUpload(t *testing.T) {
	env := testenv.NewS3(t)
	dir := filepath.Join(t.TempDir(), "data")
	big := filepath.Join(dir, "attachments", "cipher-big", "big")
	bigData := randomData(12<<20, 99)
	writeFile(t, big, bigData)
	for i := range 40 {
		writeFile(t, filepath.Join(dir, "attachments", fmt.Sprintf("cipher-%02d", i%8), fmt.Sprintf("att-%02d", i)), randomData(1000+i*700, byte(i)))
	}
	writeFile(t, filepath.Join(dir, "config.json"), []byte(`{"domain":"https://vw.example"}`))
	old := time.Now().Add(-time.Minute) // stable at once
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			os.Chtimes(p, old, old)
		}
		return nil
	})

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+dir, childEnv+"_BUCKET="+env.Bucket,
		testenv.EnvEndpoint+"="+env.Endpoint, testenv.EnvAccessKey+"="+env.AccessKey,
		testenv.EnvSecretKey+"="+env.SecretKey, testenv.EnvRegion+"="+env.Region)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	bigKey := "vw/files/attachments/cipher-big/big"
	waitFor(t, 20*time.Second, func() bool { return len(bucketKeys(t, env, "vw/files/")) >= 20 })
	// The child has spent as long on the big upload as 20 small ones took;
	// give it a moment more so parts are in flight, then kill it.
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if _, err := rawGet(t, env, bigKey); err == nil {
		t.Log("the big file finished before the kill; the test proves less than it should")
	} else if !strings.Contains(err.Error(), "NoSuchKey") {
		t.Fatalf("big object after the kill: %v", err)
	}
	// Whatever the bucket shows is complete.
	local := syncedFiles(t, dir)
	for _, k := range bucketKeys(t, env, "vw/files/") {
		got, err := rawGet(t, env, k)
		if err != nil || !bytes.Equal(got, local[strings.TrimPrefix(k, "vw/")]) {
			t.Fatalf("%s visible after the kill with wrong bytes (%d bytes, %v)", k, len(got), err)
		}
	}
	if data, err := os.ReadFile(filepath.Join(dir, ".vwstream", filesync.ManifestName)); err == nil && !json.Valid(data) {
		t.Fatal("manifest torn by the kill")
	}

	start := time.Now()
	s := open(t, fastOptions(dir, newS3(t, env, "")))
	waitIdle(t, s, start)
	keys := bucketKeys(t, env, "vw/")
	if len(keys) != len(local) {
		t.Fatalf("bucket holds %d objects, want exactly the %d files: %v", len(keys), len(local), keys)
	}
	for _, k := range keys {
		got, err := rawGet(t, env, k)
		if err != nil || !bytes.Equal(got, local[strings.TrimPrefix(k, "vw/")]) {
			t.Fatalf("%s after restart: %d bytes, %v", k, len(got), err)
		}
	}
	if st := s.Status(); st.Error != "" {
		t.Fatalf("status after restart: %+v", st)
	}
}
