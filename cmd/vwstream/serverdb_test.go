package main

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/serverdb"
	"github.com/vwstream/vwstream/internal/testenv"
)

// TestServerDB_Commands drives config, check, backup and restore with a
// PostgreSQL DATABASE_URL as a user would: the dump is loaded into an empty
// database given by --database-url, a non-empty one is refused, without the
// flag the dump lands in the folder with the line that loads it, a wrong
// password fails check in one line; the password is in no output.
func TestServerDB_Commands(t *testing.T) {
	src := testenv.NewServerVault(t, serverdb.PostgreSQL, 30)
	srcURL := rawURL(src)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "config.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"LOG_LEVEL=info", "DATA_FOLDER=" + data, "LOCAL_TARGET=" + filepath.Join(dir, "backup"),
		"GPG_PASSPHRASE=snapshot pass", "DATABASE_URL=" + srcURL}
	var all strings.Builder
	step := func(want int, args ...string) string {
		t.Helper()
		code, out, stderr := invoke(t, env, args...)
		all.WriteString(out + stderr)
		if code != want {
			t.Fatalf("%v: exit %d, want %d\n%s%s", args, code, want, out, stderr)
		}
		return out + stderr
	}

	if out := step(exitOK, "config"); !strings.Contains(out, "postgresql://vwtest:xxxxx@") {
		t.Errorf("config does not show the redacted URL:\n%s", out)
	}
	if out := step(exitOK, "check"); !strings.Contains(out, "pg_dump (PostgreSQL)") || !strings.Contains(out, "can dump it") {
		t.Errorf("check does not report the server and the dump tool:\n%s", out)
	}
	step(exitOK, "backup", "--json")

	dstURL := testenv.NewPostgres(t)
	out := step(exitOK, "restore", "--snapshot", "latest", "--to", filepath.Join(dir, "r1"), "--database-url", dstURL)
	if !strings.Contains(out, "row counts match the manifest") {
		t.Errorf("restore into an empty database:\n%s", out)
	}
	out = step(exitFailure, "restore", "--snapshot", "latest", "--to", filepath.Join(dir, "r2"), "--database-url", dstURL)
	if !strings.Contains(out, "vwstream restore: restore: database is not empty: postgresql://vwtest:xxxxx@") || strings.Count(out, "vwstream restore:") != 1 {
		t.Errorf("restore into a non-empty database: want one line saying so:\n%s", out)
	}
	out = step(exitOK, "restore", "--snapshot", "latest", "--to", filepath.Join(dir, "r3"))
	if !strings.Contains(out, "database.pgdump; load it with: pg_restore") {
		t.Errorf("restore without --database-url:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "r3", "database.pgdump")); err != nil {
		t.Error(err)
	}
	if out := step(exitUsage, "restore", "--to", filepath.Join(dir, "r4")); !strings.Contains(out, "has no replica, only snapshots") {
		t.Errorf("replica restore with a server database:\n%s", out)
	}

	pu, _ := url.Parse(srcURL)
	pu.User = url.UserPassword(pu.User.Username(), "Wr0ngPassw0rd")
	env[len(env)-1] = "DATABASE_URL=" + pu.String()
	out = step(exitFailure, "check")
	if !strings.Contains(out, "wrong user name or password") {
		t.Errorf("check with a wrong password:\n%s", out)
	}
	for _, pw := range []string{src.Password, "Wr0ngPassw0rd"} {
		if strings.Contains(all.String(), pw) {
			t.Fatalf("a database password appears in the output")
		}
	}
}

// rawURL is the URL with its password, as a user would set DATABASE_URL.
func rawURL(u *serverdb.URL) string {
	v := url.URL{Scheme: u.Kind, User: url.UserPassword(u.User, u.Password), Host: u.Addr(), Path: "/" + u.Database, RawQuery: u.Params.Encode()}
	return v.String()
}
