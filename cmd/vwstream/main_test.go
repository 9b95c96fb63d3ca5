package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// invoke runs the command line in-process and returns exit code, stdout, stderr.
func invoke(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, env, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestRun_Usage(t *testing.T) {
	for _, args := range [][]string{nil, {"help"}, {"--help"}} {
		code, out, _ := invoke(t, nil, args...)
		if code != exitOK {
			t.Fatalf("%q: exit %d", args, code)
		}
		for _, c := range commands {
			if !strings.Contains(out, "  "+c.name+" ") {
				t.Errorf("%q: usage does not list %s", args, c.name)
			}
		}
	}
	if code, _, stderr := invoke(t, nil, "frobnicate"); code != exitUsage || !strings.HasPrefix(stderr, "vwstream: ") {
		t.Errorf("unknown command: exit %d, stderr %q", code, stderr)
	}
}

func TestRun_HelpEveryCommand(t *testing.T) {
	own := map[string][]string{
		"restore":   {"--to DIR", "--at TIME", "--snapshot NAME", "--force", "--json"},
		"snapshots": {"--json"},
		"status":    {"--json"},
		"config":    {"--json", "--reference"},
		"version":   {"--json"},
	}
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
			code, out, stderr := invoke(t, nil, args...)
			if code != exitOK || stderr != "" {
				t.Fatalf("%q: exit %d, stderr %q", args, code, stderr)
			}
			if !strings.Contains(out, "Usage: vwstream "+c.name) {
				t.Errorf("%q: no usage line:\n%s", args, out)
			}
			for _, f := range own[c.name] {
				if !strings.Contains(out, f) {
					t.Errorf("%q: help does not mention %s", args, f)
				}
			}
			if c.name != "version" && !strings.Contains(out, "--s3-bucket") {
				t.Errorf("%q: help does not list the configuration flags", args)
			}
		}
	}
}

func TestRun_ExitCodes(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(secretFile, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		env    []string
		args   []string
		code   int
		stderr string // substring of the one stderr line; "" means empty stderr
	}{
		{"version", nil, []string{"version"}, exitOK, ""},
		{"config", []string{"S3_BUCKET=b"}, []string{"config"}, exitOK, ""},
		{"bad variable", []string{"NODE_ROLE=leader"}, []string{"backup"}, exitUsage, `vwstream: config: NODE_ROLE="leader"`},
		{"bad variable on config", []string{"BACKUP_CRON=never"}, []string{"config"}, exitUsage, "BACKUP_CRON"},
		{"bad flag value", nil, []string{"status", "--lease-ttl=0"}, exitUsage, "--lease-ttl"},
		{"unknown flag", nil, []string{"snapshots", "--nope"}, exitUsage, "--nope"},
		{"positional", nil, []string{"verify", "extra"}, exitUsage, "extra"},
		{"NAME and NAME_FILE", []string{"GPG_PASSPHRASE=a", "GPG_PASSPHRASE_FILE=" + secretFile}, []string{"backup"}, exitUsage, "GPG_PASSPHRASE"},
		{"remote unencrypted", []string{"S3_BUCKET=b"}, []string{"run"}, exitUsage, "ENCRYPTION_PASSPHRASE"},
		{"remote unencrypted check", []string{"S3_BUCKET=b"}, []string{"check"}, exitUsage, "ALLOW_UNENCRYPTED"},
		{"snapshot unencrypted", []string{"S3_BUCKET=b", "ENCRYPTION_PASSPHRASE=x"}, []string{"backup"}, exitUsage, "GPG_PASSPHRASE"},
		{"restore without --to", nil, []string{"restore"}, exitUsage, "--to"},
		{"restore bad --at", nil, []string{"restore", "--to", "/x", "--at", "yesterday"}, exitUsage, "--at"},
		{"restore --at and --snapshot", nil, []string{"restore", "--to=/x", "--at=2025-01-01T00:00:00Z", "--snapshot=latest"}, exitUsage, "--snapshot"},
		{"healthcheck bad config", []string{"NODE_ROLE=x"}, []string{"healthcheck"}, exitFailure, "NODE_ROLE"},
		{"healthcheck no status", []string{"STATUS_ADDR=off", "STATUS_FILE=/nonexistent/s.json"}, []string{"healthcheck", "--no-vaultwarden"}, exitFailure, "no status available"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := append([]string{"LOG_LEVEL=error"}, tc.env...)
			code, _, stderr := invoke(t, env, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, stderr)
			}
			if tc.stderr == "" {
				if stderr != "" {
					t.Fatalf("stderr %q, want none", stderr)
				}
				return
			}
			if !strings.Contains(stderr, tc.stderr) || strings.Count(stderr, "\n") != 1 {
				t.Fatalf("stderr %q, want one line with %q", stderr, tc.stderr)
			}
		})
	}
}

func TestRun_ConfigNeverShowsSecrets(t *testing.T) {
	const mark = "S3CR3T-xyz"
	file := filepath.Join(t.TempDir(), "age")
	if err := os.WriteFile(file, []byte(mark+"-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"S3_BUCKET=bucket", "S3_SECRET_ACCESS_KEY=" + mark, "AGE_PASSPHRASE_FILE=" + file,
		"NOTIFICATION_URLS=ntfy://user:" + mark + "@ntfy.sh/" + mark, "RCLONE_CONFIG_OFF_TYPE=sftp",
		"RCLONE_CONFIG_OFF_PASS=" + mark, "S3_ENDPOINT=https://minio.invalid:9000",
		"HEALTHCHECK_PING_URL=https://hc-ping.com/" + mark,
	}
	for _, args := range [][]string{
		{"config"}, {"config", "--json"}, {"config", "--encryption-passphrase=" + mark + "-flag"},
		{"config", "--gpg-passphrase=" + mark}, // two modes: an error that must hide both
		{"run", "--s3-secret-access-key", mark},
		{"config", "--s3-endpoint=https://k:" + mark + "@minio:9000"}, // refused, and the error hides it
		{"config", "--s3-endpoint=https://minio:9000/?token=" + mark},
		{"config", "--healthcheck-ping-url=hc-ping.com/" + mark}, // refused, and the error hides it
	} {
		code, stdout, stderr := invoke(t, env, args...)
		if strings.Contains(stdout+stderr, mark) {
			t.Errorf("%q (exit %d) shows a secret:\n%s\n%s", args, code, stdout, stderr)
		}
	}
	code, stdout, _ := invoke(t, env, "config", "--json")
	var rows []struct{ Name, Value, Source string }
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil || code != exitOK {
		t.Fatalf("config --json: exit %d, %v", code, err)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[r.Name] = r.Value + " | " + r.Source
	}
	for name, want := range map[string]string{
		"S3_SECRET_ACCESS_KEY": "(set) | env S3_SECRET_ACCESS_KEY",
		"AGE_PASSPHRASE":       "(set) | file AGE_PASSPHRASE_FILE",
		"S3_BUCKET":            "bucket | env S3_BUCKET",
		"NODE_ROLE":            "primary | default",
	} {
		if got[name] != want {
			t.Errorf("%s = %q, want %q", name, got[name], want)
		}
	}
}

func TestRun_ConfigReference(t *testing.T) {
	code, out, _ := invoke(t, []string{"NODE_ROLE=bad"}, "config", "--reference")
	if code != exitOK || !strings.HasPrefix(out, "# Configuration reference") {
		t.Fatalf("exit %d, output %.60q", code, out)
	}
	docs, err := os.ReadFile(filepath.Join("..", "..", "docs", "CONFIGURATION.md"))
	if err != nil || string(docs) != out {
		t.Fatalf("docs/CONFIGURATION.md differs from config --reference (err %v)", err)
	}
}

func TestRun_Version(t *testing.T) {
	defer func(v, c string) { version, commit = v, c }(version, commit)
	version, commit = "v9.8.7", "abc1234"
	code, out, _ := invoke(t, nil, "version")
	if code != exitOK || !strings.Contains(out, "v9.8.7") || !strings.Contains(out, "abc1234") || !strings.Contains(out, "go1.") {
		t.Fatalf("exit %d, %q", code, out)
	}
	code, out, _ = invoke(t, nil, "--version", "--json")
	var v map[string]string
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != exitOK || v["version"] != "v9.8.7" {
		t.Fatalf("--version --json: exit %d, %q", code, out)
	}
}
