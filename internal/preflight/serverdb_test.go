package preflight_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/preflight"
	"github.com/vwstream/vwstream/internal/serverdb"
	"github.com/vwstream/vwstream/internal/testenv"
)

// TestServerDatabase: check connects and reports the server and the dump
// tool; a dump tool older than the server fails the item in one line. The old
// tool is a script printing an old version (the real skew would need a second
// server release).
func TestServerDatabase(t *testing.T) {
	for kind, newDB := range map[string]func(testing.TB) string{serverdb.PostgreSQL: testenv.NewPostgres, serverdb.MySQL: testenv.NewMySQL} {
		t.Run(kind, func(t *testing.T) {
			u, err := serverdb.Parse(newDB(t))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			it := preflight.ServerDatabase(ctx, u, serverdb.Tools{})
			if !it.OK || !strings.Contains(it.Detail, "can dump it") {
				t.Fatalf("item %+v", it)
			}
			line, want := "pg_dump (PostgreSQL) 11.22", "pg_dump 11.22 is older than the PostgreSQL"
			if kind == serverdb.MySQL {
				line, want = "mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)", "the dump tool is MySQL's"
			}
			fake := filepath.Join(t.TempDir(), "dump")
			if err := os.WriteFile(fake, []byte("#!/bin/sh\necho '"+line+"'\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			it = preflight.ServerDatabase(ctx, u, serverdb.Tools{Dump: fake})
			if it.OK || !strings.Contains(it.Detail, want) || strings.ContainsAny(it.Detail, "\r\n") || strings.Contains(it.Detail, u.Password) {
				t.Fatalf("old tool: %+v, want one failing line saying %q", it, want)
			}
		})
	}
}
