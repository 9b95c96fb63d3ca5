package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// envVersitygw names the versitygw binary scripts/test exports, for tests that
// need a server of their own to stop and start.
const envVersitygw = "VWSTREAM_TEST_VERSITYGW"

// OwnS3 is a versitygw process owned by one test, so the test can stop it,
// freeze it and start it again on the same port and folder: outages on demand.
type OwnS3 struct {
	Env  S3 // its endpoint, credentials and the one bucket NewOwnS3 created
	t    testing.TB
	bin  string
	dir  string
	addr string
	cmd  *exec.Cmd
	log  *os.File
}

// NewOwnS3 starts versitygw on a free loopback port with a fresh posix
// folder and creates one bucket. Without the binary it fails under CI and skips
// elsewhere, as testenv does.
func NewOwnS3(t testing.TB) *OwnS3 {
	t.Helper()
	bin := os.Getenv(envVersitygw)
	if bin == "" {
		if p, err := exec.LookPath("versitygw"); err == nil {
			bin = p
		}
	}
	if bin == "" {
		if InCI() {
			t.Fatalf("%s is not set: no versitygw binary", envVersitygw)
		}
		t.Skipf("%s is not set: run the tests through scripts/test", envVersitygw)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	dir := t.TempDir()
	s := &OwnS3{t: t, bin: bin, dir: filepath.Join(dir, "s3"), addr: addr}
	if err := os.Mkdir(s.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if s.log, err = os.Create(filepath.Join(dir, "versitygw.log")); err != nil {
		t.Fatal(err)
	}
	s.Env = S3{Endpoint: "http://" + addr, AccessKey: "outage", SecretKey: "outagesecret", Region: "us-east-1", Bucket: "outage"}
	t.Cleanup(func() {
		s.Stop()
		_ = s.log.Close()
	})
	s.Start()
	if _, err := s.Env.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &s.Env.Bucket}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return s
}

// Start runs the server and waits until its health endpoint answers.
func (s *OwnS3) Start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "--port", s.addr, "--access", s.Env.AccessKey, "--secret", s.Env.SecretKey,
		"--region", s.Env.Region, "--health", "/health", "posix", s.dir)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.Env.Endpoint + "/health")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(s.log.Name())
			s.t.Fatalf("versitygw on %s not healthy after 30s: %v\n%s", s.addr, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server (SIGKILL: the outage is abrupt) and waits for it.
func (s *OwnS3) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Freeze stops the server with SIGSTOP: connections are accepted by the
// kernel but never answered, like a partition that drops packets.
func (s *OwnS3) Freeze() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

// Thaw resumes a frozen server.
func (s *OwnS3) Thaw() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// String names the server in messages.
func (s *OwnS3) String() string {
	return fmt.Sprintf("versitygw %s (%s)", s.addr, strings.TrimPrefix(s.dir, os.TempDir()))
}

// Dir is the server's posix folder (one folder per bucket, one file per
// object), for tests that damage objects behind the server's back.
func (s *OwnS3) Dir() string { return s.dir }
