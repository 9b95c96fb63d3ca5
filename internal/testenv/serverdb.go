package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"

	"github.com/vwstream/vwstream/internal/serverdb"
	"github.com/vwstream/vwstream/internal/vaultsim"
)

// NewPostgres returns the URL of a new, empty database on the test PostgreSQL
// server (scripts/test starts it and sets VWSTREAM_TEST_PG_URL), dropped when
// the test ends. It fails the test under CI when the server is missing.
func NewPostgres(t testing.TB) string {
	t.Helper()
	return newServerDB(t, "VWSTREAM_TEST_PG_URL", "PostgreSQL")
}

// NewMySQL is NewPostgres for the test MariaDB server (VWSTREAM_TEST_MYSQL_URL).
func NewMySQL(t testing.TB) string {
	t.Helper()
	return newServerDB(t, "VWSTREAM_TEST_MYSQL_URL", "MariaDB")
}

func newServerDB(t testing.TB, env, what string) string {
	t.Helper()
	admin := os.Getenv(env)
	if admin == "" {
		unavailable(t, "no test %s server: %s is not set", what, env)
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("%s: %v", env, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "vwtest_" + hex.EncodeToString(b)
	db, err := openAdmin(u)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database on %s: %v", what, err)
	}
	adminURL := *u
	t.Cleanup(func() {
		db, err := openAdmin(&adminURL)
		if err != nil {
			t.Errorf("drop test database: %v", err)
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		q := "DROP DATABASE IF EXISTS " + name
		if adminURL.Scheme != "mysql" {
			q += " WITH (FORCE)"
		}
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

func openAdmin(u *url.URL) (*sql.DB, error) {
	if u.Scheme == "mysql" {
		c := mysql.NewConfig()
		c.User = u.User.Username()
		c.Passwd, _ = u.User.Password()
		c.Net, c.Addr = "tcp", u.Host
		return sql.Open("mysql", c.FormatDSN())
	}
	return sql.Open("pgx", u.String())
}

// NewServerVault is a new test database of kind (serverdb.PostgreSQL or
// serverdb.MySQL) holding Vaultwarden's schema with seed ciphers
// (vaultsim.CreateServerVault).
func NewServerVault(t testing.TB, kind string, seed int) *serverdb.URL {
	t.Helper()
	raw := NewPostgres
	if kind == serverdb.MySQL {
		raw = NewMySQL
	}
	u, err := serverdb.Parse(raw(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := serverdb.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := vaultsim.CreateServerVault(ctx, db, kind, seed); err != nil {
		t.Fatal(err)
	}
	return u
}

// WaitFor polls cond until it holds, failing the test after a minute.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in a minute", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
