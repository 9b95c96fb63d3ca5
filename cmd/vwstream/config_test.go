package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Values the parsers used to accept and the run then tripped on: config, check
// and run refuse each with exit 2 and one line naming the variable, before
// touching the data folder or the target.
func TestConfig_RefusedAtLoad(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"
	base := []string{"LOG_LEVEL=error", "DATA_FOLDER=" + data, "STATUS_ADDR=off", "STATUS_FILE=" + filepath.Join(dir, "s.json"),
		"LOCAL_TARGET=" + filepath.Join(dir, "target")}
	for _, tc := range []struct{ name, value string }{
		{"BACKUP_CRON", "@every 0s"},
		{"BACKUP_CRON", "0 0 31 2 *"},
		{"NOTIFICATION_BODY", "{{.Nope}}"},
		{"NOTIFICATION_URLS", "smpt://mail.example.com"},
		{"AGE_PUBLIC_KEYS", "age1xyz"},
		{"ENCRYPTION_KEY", secret},
		{"DATABASE_URL", filepath.Join(dir, "db.sqlite3")},
		{"STATUS_FILE", filepath.Join(dir, "missing", "s.json")},
		{"STATUS_ADDR", "192.0.2.1:8081"},
		{"ATTACHMENTS_FOLDER", file},
		{"DATA_FOLDER", file}, // a checklist failure (exit 1) before: now refused with the configuration
		{"BACKUP_EXTRA_REMOTES", "offsite:vw"},
		{"BACKUP_FILENAME", "vaultwarden-latest"},
		{"S3_PREFIX", "../elsewhere"},
	} {
		for _, cmd := range []string{"config", "check", "run"} {
			t.Run(cmd+"/"+tc.name+"="+tc.value, func(t *testing.T) {
				env := append([]string{tc.name + "=" + tc.value}, base...) // the first wins
				code, stdout, stderr := invoke(t, env, cmd)
				if code != exitUsage {
					t.Fatalf("exit %d, want %d; stderr %q", code, exitUsage, stderr)
				}
				if !strings.HasPrefix(stderr, "vwstream: config: "+tc.name) || strings.Count(stderr, "\n") != 1 {
					t.Errorf("stderr %q, want one line naming %s", stderr, tc.name)
				}
				if stdout != "" {
					t.Errorf("stdout %q, want none", stdout)
				}
				if strings.Contains(stderr, secret[16:]) {
					t.Errorf("stderr shows the secret: %q", stderr)
				}
				if entries, _ := os.ReadDir(data); len(entries) != 0 {
					t.Errorf("the data folder was touched: %d entries", len(entries))
				}
			})
		}
	}
}
