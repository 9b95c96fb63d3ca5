// Package serverdb_test compares `vwstream backup` of a Vaultwarden on
// PostgreSQL with the pipeline users run by hand (pg_dump -Fc | gpg -c to a
// file, then one upload) on the same server and the same S3 server. It is
// opt-in and slow; run it through scripts/test, which starts both servers:
//
//	VWSTREAM_BENCH=1 scripts/test ./bench/serverdb -run TestComparePG -v
//
// VWSTREAM_BENCH_PG_MB sets the database size (default 1024). Results are
// recorded in RESULTS.md.
package serverdb_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/vwstream/vwstream/internal/serverdb"
	"github.com/vwstream/vwstream/internal/testenv"
)

const passphrase = "bench passphrase"

type measured struct {
	Wall     time.Duration
	PeakRSS  int64 // bytes, the largest of the processes involved
	TempDisk int64 // bytes on disk besides the database
	Size     int64 // bytes uploaded
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func TestComparePG(t *testing.T) {
	if os.Getenv("VWSTREAM_BENCH") != "1" {
		t.Skip("set VWSTREAM_BENCH=1 to run the server database benchmark")
	}
	mb := 1024
	if n, err := strconv.Atoi(os.Getenv("VWSTREAM_BENCH_PG_MB")); err == nil && n > 0 {
		mb = n
	}
	env := testenv.NewS3(t)
	for _, tool := range []string{"pg_dump", "gpg"} {
		testenv.Tool(t, tool)
	}
	u := testenv.NewServerVault(t, serverdb.PostgreSQL, 0)
	size := fill(t, u, mb)
	bin := testenv.Binaries(t, "github.com/vwstream/vwstream/cmd/vwstream")[0]
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "config.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	anchor := pgDumpGPG(t, env, u, t.TempDir())
	vw := vwstreamBackup(t, env, bin, data, u, "true")
	vwNoVerify := vwstreamBackup(t, env, bin, data, u, "false")
	t.Logf("database %.0f MiB (pg_database_size)", mib(size))
	t.Logf("pg_dump -Fc | gpg -c + upload: %s rss %.1f MiB temp %.1f MiB size %.1f MiB", anchor.Wall.Round(time.Millisecond), mib(anchor.PeakRSS), mib(anchor.TempDisk), mib(anchor.Size))
	t.Logf("vwstream backup (verify): %s rss %.1f MiB temp %.1f MiB size %.1f MiB ratio %.2f", vw.Wall.Round(time.Millisecond), mib(vw.PeakRSS), mib(vw.TempDisk), mib(vw.Size), vw.Wall.Seconds()/anchor.Wall.Seconds())
	t.Logf("vwstream backup (no verify): %s rss %.1f MiB ratio %.2f", vwNoVerify.Wall.Round(time.Millisecond), mib(vwNoVerify.PeakRSS), vwNoVerify.Wall.Seconds()/anchor.Wall.Seconds())
}

// fill adds ciphers of about 2 KB (hex text, as compressible as Vaultwarden's
// base64 ciphertext is not quite) until the database reaches mb MiB.
func fill(t *testing.T, u *serverdb.URL, mb int) int64 {
	ctx := context.Background()
	db, err := serverdb.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var size int64
	for batch := 0; ; batch++ {
		if err := db.QueryRowContext(ctx, "SELECT pg_database_size(current_database())").Scan(&size); err != nil {
			t.Fatal(err)
		}
		if size >= int64(mb)<<20 {
			return size
		}
		q := fmt.Sprintf(`INSERT INTO ciphers (uuid, created_at, updated_at, user_uuid, atype, name, data)
			SELECT 'b%07d-' || lpad(g::text, 28, '0'), now(), now(), '00000000-0000-4000-8000-000000000001', 1,
				md5(g::text), repeat(md5(random()::text), 60)
			FROM generate_series(1, 20000) g`, batch)
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
}

// pgDumpGPG is the hand-made backup: pg_dump -Fc | gpg -c to a file, then
// one PutObject of the file.
func pgDumpGPG(t *testing.T, env testenv.S3, u *serverdb.URL, work string) measured {
	out := filepath.Join(work, "vaultwarden.pgdump.gpg")
	script := fmt.Sprintf("pg_dump -Fc --no-password --host=%s --port=%d --username=%s %s | gpg --batch --yes --pinentry-mode loopback --passphrase-fd 3 --symmetric --cipher-algo AES256 -o %s 3<<EOF\n%s\nEOF",
		u.Host, u.Port, u.User, u.Database, out, passphrase)
	cmd := exec.Command("bash", "-o", "pipefail", "-c", script)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+u.Password, "GNUPGHOME="+work)
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_dump | gpg: %v\n%s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if _, err := env.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("anchor/vaultwarden.pgdump.gpg"),
		Body: f, ContentLength: aws.Int64(fi.Size())}); err != nil {
		t.Fatalf("upload: %v", err)
	}
	return measured{Wall: time.Since(start), PeakRSS: testenv.MaxRSS(cmd.ProcessState), TempDisk: fi.Size(), Size: fi.Size()}
}

func vwstreamBackup(t *testing.T, env testenv.S3, bin, data string, u *serverdb.URL, verify string) measured {
	cmd := exec.Command(bin, "backup", "--json")
	cmd.Env = append(os.Environ(), "DATA_FOLDER="+data,
		fmt.Sprintf("DATABASE_URL=postgresql://%s:%s@%s/%s?sslmode=disable", u.User, u.Password, u.Addr(), u.Database),
		"S3_BUCKET="+env.Bucket, "S3_ENDPOINT="+env.Endpoint, "S3_REGION="+env.Region,
		"S3_ACCESS_KEY_ID="+env.AccessKey, "S3_SECRET_ACCESS_KEY="+env.SecretKey, "S3_FORCE_PATH_STYLE=true",
		"GPG_PASSPHRASE="+passphrase, "ENCRYPTION_PASSPHRASE="+passphrase, "BACKUP_VERIFY="+verify,
		"BACKUP_RETENTION_DAYS=0", "LOG_LEVEL=warn")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("vwstream backup: %v\n%s", err, out.String())
	}
	wall := time.Since(start)
	var res struct {
		Size        int64 `json:"size"`
		DBCopyBytes int64 `json:"db_copy_bytes"`
	}
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("backup --json: %v\n%s", err, out.String())
	}
	time.Sleep(1100 * time.Millisecond) // snapshot names have one-second resolution
	// The dump's largest child is pg_dump; RUSAGE_CHILDREN of vwstream is not
	// separated here, so the RSS is vwstream's own.
	return measured{Wall: wall, PeakRSS: testenv.MaxRSS(cmd.ProcessState), TempDisk: res.DBCopyBytes, Size: res.Size}
}
