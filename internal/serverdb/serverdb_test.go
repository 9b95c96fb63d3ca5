package serverdb_test

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/serverdb"
	"github.com/vwstream/vwstream/internal/testenv"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

func servers(t *testing.T) map[string]func(testing.TB) string {
	return map[string]func(testing.TB) string{serverdb.PostgreSQL: testenv.NewPostgres, serverdb.MySQL: testenv.NewMySQL}
}

var kinds = []string{serverdb.PostgreSQL, serverdb.MySQL}

func mustParse(t testing.TB, s string) *serverdb.URL {
	t.Helper()
	u, err := serverdb.Parse(s)
	if err != nil {
		t.Fatalf("parse test URL: %v", err)
	}
	return u
}

// TestDumpDuringWrites dumps while a workload commits transactions and loads
// the dump into an empty database: the restored database holds exactly the
// transactions of the dump's snapshot per the ledger, every transaction whole,
// and its row counts equal the dump's.
func TestDumpDuringWrites(t *testing.T) {
	for kind, newDB := range servers(t) {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			src := testenv.NewServerVault(t, kind, 200)
			db, err := serverdb.Open(ctx, src)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()

			l, stop := vaultsim.StartServerWorkload(ctx, db, kind)
			testenv.WaitFor(t, "20 transactions", func() bool { _, a := l.Counts(); return a >= 20 })

			_, ackedBefore := l.Counts()
			snap, err := serverdb.Begin(ctx, src, serverdb.Tools{})
			if err != nil {
				t.Fatal(err)
			}
			var dump bytes.Buffer
			err = snap.WriteTo(ctx, &dump)
			startedAfter, _ := l.Counts()
			snap.Close()
			if err != nil {
				t.Fatal(err)
			}
			// Keep writing after the dump so later transactions exist to be left out.
			testenv.WaitFor(t, "10 transactions after the dump", func() bool { s, _ := l.Counts(); return s >= startedAfter+10 })
			if err := stop(); err != nil {
				t.Fatalf("workload: %v", err)
			}
			info := snap.Info()
			if info.Migration != migrationVersions[len(migrationVersions)-1] || info.ServerVersion == "" || info.DumpTool == "" {
				t.Errorf("info = %+v", info)
			}

			dst := mustParse(t, newDB(t))
			if err := serverdb.Load(ctx, dst, bytes.NewReader(dump.Bytes()), serverdb.LoadOptions{Format: info.Format}); err != nil {
				t.Fatal(err)
			}
			got, err := serverdb.Count(ctx, dst)
			if err != nil {
				t.Fatal(err)
			}
			if diffs := serverdb.CompareCounts(got, info.Tables); len(diffs) > 0 {
				t.Fatalf("restored counts differ from the dump's: %v", diffs)
			}
			rdb, err := serverdb.Open(ctx, dst)
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			n, err := vaultsim.VerifyServerRestore(ctx, db, rdb, kind, l, info.Snapshot, ackedBefore, startedAfter)
			if err != nil {
				t.Fatal(err)
			}
			if got["ciphers"] != int64(200+n) {
				t.Errorf("ciphers = %d, want 200 seeded + %d of the workload", got["ciphers"], n)
			}
			acked, _ := l.Entries()
			t.Logf("%s: %d of %d workload transactions in the dump (%d acknowledged before it began, %d started when it ended), %d bytes",
				kind, n, len(acked), ackedBefore, startedAfter, dump.Len())
		})
	}
}

// TestLoadRefusesNonEmpty: a database with tables is refused unless Force.
func TestLoadRefusesNonEmpty(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			src := testenv.NewServerVault(t, kind, 3)
			snap, err := serverdb.Begin(ctx, src, serverdb.Tools{})
			if err != nil {
				t.Fatal(err)
			}
			var dump bytes.Buffer
			if err := snap.WriteTo(ctx, &dump); err != nil {
				t.Fatal(err)
			}
			snap.Close()
			info := snap.Info()
			err = serverdb.Load(ctx, src, bytes.NewReader(dump.Bytes()), serverdb.LoadOptions{Format: info.Format})
			if !errors.Is(err, serverdb.ErrNotEmpty) || strings.Contains(err.Error(), src.Password) {
				t.Fatalf("load into the source database: %v, want ErrNotEmpty without the password", err)
			}
			if err := serverdb.Load(ctx, src, bytes.NewReader(dump.Bytes()), serverdb.LoadOptions{Format: info.Format, Force: true}); err != nil {
				t.Fatalf("forced load: %v", err)
			}
			got, err := serverdb.Count(ctx, src)
			if err != nil {
				t.Fatal(err)
			}
			if diffs := serverdb.CompareCounts(got, info.Tables); len(diffs) > 0 {
				t.Fatalf("after a forced load: %v", diffs)
			}
		})
	}
}

// TestConnectErrors: a wrong password and an unreachable server each give
// one line naming the cause, without the password.
func TestConnectErrors(t *testing.T) {
	for kind, newDB := range servers(t) {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			good := newDB(t)
			pu, _ := url.Parse(good)
			wrong := *pu
			wrong.User = url.UserPassword(pu.User.Username(), "Wr0ng-S3cret-pass")
			_, err := serverdb.Begin(ctx, mustParse(t, wrong.String()), serverdb.Tools{})
			checkLine(t, err, "wrong user name or password", "Wr0ng-S3cret-pass")

			dead := *pu
			dead.Host = "127.0.0.1:1" // nothing listens on port 1
			_, err = serverdb.Begin(ctx, mustParse(t, dead.String()), serverdb.Tools{})
			pw, _ := pu.User.Password()
			checkLine(t, err, "nothing listens there", pw)
		})
	}
}

func checkLine(t *testing.T, err error, want, secret string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	msg := err.Error()
	if !strings.Contains(msg, want) || strings.ContainsAny(msg, "\r\n") || strings.Contains(msg, secret) {
		t.Errorf("error = %q: want one line saying %q without the password", msg, want)
	}
}

// TestToolOlderThanServer: a dump tool reporting an older version than the
// server is refused before dumping. The old tool is a script printing an old
// version line; the real skew would need a second PostgreSQL/MariaDB release.
func TestToolOlderThanServer(t *testing.T) {
	for kind, newDB := range servers(t) {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			u := mustParse(t, newDB(t))
			line := "pg_dump (PostgreSQL) 9.6.24"
			want := "pg_dump 9.6 is older than the PostgreSQL"
			if kind == serverdb.MySQL {
				line = "mysqldump  Ver 10.19 Distrib 10.3.39-MariaDB, for debian-linux-gnu (x86_64)"
				want = "the dump tool (10.3) is older than the server"
			}
			fake := filepath.Join(t.TempDir(), "old-dump")
			if err := os.WriteFile(fake, []byte("#!/bin/sh\necho '"+line+"'\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := serverdb.Begin(ctx, u, serverdb.Tools{Dump: fake})
			if !errors.Is(err, serverdb.ErrToolSkew) {
				t.Fatalf("err = %v, want ErrToolSkew", err)
			}
			checkLine(t, err, want, u.Password)
			// The tool on PATH can dump the test server.
			db, err := serverdb.Open(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			srv, err := serverdb.ServerInfo(ctx, db, kind)
			if err != nil {
				t.Fatal(err)
			}
			if c, err := serverdb.CheckTool(ctx, serverdb.Tools{}, srv); err != nil || !c.OK {
				t.Errorf("tool on PATH: %+v, %v", c, err)
			}
		})
	}
}
