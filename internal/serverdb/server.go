package serverdb

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// DefaultConnectTimeout bounds connecting to the server.
const DefaultConnectTimeout = 10 * time.Second

// MigrationsTable is Diesel's record of the schema migrations Vaultwarden ran.
const MigrationsTable = "__diesel_schema_migrations"

// ErrNotEmpty reports a restore into a database that already holds tables.
var ErrNotEmpty = errors.New("database is not empty")

// Open connects to the server and checks the connection. The caller closes
// the pool.
func Open(ctx context.Context, u *URL) (*sql.DB, error) {
	var db *sql.DB
	switch u.Kind {
	case PostgreSQL:
		cfg, err := pgx.ParseConfig(u.conninfo())
		if err != nil {
			return nil, u.scrubbed(fmt.Errorf("postgresql %s: %w", u, err))
		}
		cfg.Password = u.Password
		cfg.ConnectTimeout = DefaultConnectTimeout
		db = stdlib.OpenDB(*cfg)
	case MySQL:
		c, err := mysql.NewConnector(u.mysqlConfig())
		if err != nil {
			return nil, u.scrubbed(fmt.Errorf("mysql %s: %w", u, err))
		}
		db = sql.OpenDB(c)
	default:
		return nil, fmt.Errorf("unknown database kind %q", u.Kind)
	}
	db.SetMaxOpenConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, u.scrubbed(fmt.Errorf("connect to %s at %s: %w", u.Kind, u.Addr(), explain(err)))
	}
	return db, nil
}

// explain shortens the drivers' connection errors to their cause.
func explain(err error) error {
	s := err.Error()
	switch {
	case strings.Contains(s, "password authentication failed"), strings.Contains(s, "Access denied"):
		return fmt.Errorf("wrong user name or password (%w)", err)
	case strings.Contains(s, "connection refused"):
		return fmt.Errorf("nothing listens there (%w)", err)
	}
	return err
}

// conninfo is a libpq keyword/value string without the password: pgx parses
// it, and pg_dump and pg_restore take it as --dbname.
func (u *URL) conninfo() string {
	kv := map[string]string{"user": u.User, "dbname": u.Database, "port": strconv.Itoa(u.Port)}
	if u.Host != "" {
		kv["host"] = u.Host
	}
	for k, v := range u.Params {
		if len(v) > 0 && k != "password" {
			kv[k] = v[len(v)-1]
		}
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		v := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(kv[k])
		parts = append(parts, k+"='"+v+"'")
	}
	return strings.Join(parts, " ")
}

func (u *URL) mysqlConfig() *mysql.Config {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.DBName = u.User, u.Password, u.Database
	c.Net, c.Addr = "tcp", u.Addr()
	if u.Socket != "" {
		c.Net, c.Addr = "unix", u.Socket
	}
	c.Timeout = DefaultConnectTimeout
	c.ParseTime = true
	switch strings.ToLower(u.Params.Get("ssl_mode")) {
	case "required":
		c.TLS = &tls.Config{InsecureSkipVerify: true} // encrypted, not verified: MySQL's REQUIRED
	case "verify_ca", "verify_identity":
		c.TLS = &tls.Config{ServerName: u.Host}
	case "preferred", "":
		c.TLSConfig = "preferred"
	}
	return c
}

// Server describes the server behind a URL.
type Server struct {
	Kind    string `json:"kind"`    // PostgreSQL or MySQL
	Version string `json:"version"` // as the server reports it: 15.18 (Debian ...), 10.11.19-MariaDB-...
	MariaDB bool   `json:"mariadb,omitempty"`
}

// ServerInfo asks the server for its version.
func ServerInfo(ctx context.Context, db *sql.DB, kind string) (Server, error) {
	s := Server{Kind: kind}
	q := "SELECT VERSION()"
	if kind == PostgreSQL {
		q = "SHOW server_version"
	}
	if err := db.QueryRowContext(ctx, q).Scan(&s.Version); err != nil {
		return s, fmt.Errorf("server version: %w", err)
	}
	s.MariaDB = strings.Contains(strings.ToLower(s.Version), "mariadb")
	return s, nil
}

// queryer is a pool, a connection or a transaction.
type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// tables lists the user tables of the database: every schema but the
// system ones on PostgreSQL (public tables by their bare name), the URL's
// database on MySQL.
func tables(ctx context.Context, q queryer, kind string) ([]string, error) {
	query := "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
	if kind == PostgreSQL {
		query = "SELECT CASE WHEN schemaname = 'public' THEN tablename ELSE schemaname || '.' || tablename END FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
	}
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		out = append(out, t)
	}
	sort.Strings(out)
	return out, rows.Err()
}

func quoteIdent(kind, name string) string {
	if kind == MySQL {
		return "`" + strings.ReplaceAll(name, "`", "``") + "`"
	}
	var parts []string
	for _, p := range strings.SplitN(name, ".", 2) {
		parts = append(parts, `"`+strings.ReplaceAll(p, `"`, `""`)+`"`)
	}
	return strings.Join(parts, ".")
}

// countTables counts the rows of every user table.
func countTables(ctx context.Context, q queryer, kind string) (map[string]int64, error) {
	names, err := tables(ctx, q, kind)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(names))
	for _, t := range names {
		var n int64
		if err := q.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteIdent(kind, t)).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		out[t] = n
	}
	return out, nil
}

// migration is the newest schema migration Vaultwarden recorded, "" when the
// table does not exist (a database Vaultwarden never started on).
func migration(ctx context.Context, q queryer, kind string, names []string) (string, error) {
	found := false
	for _, t := range names {
		found = found || t == MigrationsTable
	}
	if !found {
		return "", nil
	}
	var v sql.NullString
	if err := q.QueryRowContext(ctx, "SELECT MAX(version) FROM "+quoteIdent(kind, MigrationsTable)).Scan(&v); err != nil {
		return "", fmt.Errorf("read %s: %w", MigrationsTable, err)
	}
	return v.String, nil
}

// Count connects and counts the rows of every user table, for checking a
// loaded dump against its manifest.
func Count(ctx context.Context, u *URL) (map[string]int64, error) {
	db, err := Open(ctx, u)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	n, err := countTables(ctx, db, u.Kind)
	return n, u.scrubbed(err)
}

// CompareCounts lists the tables whose counts differ, as "name: got N, want M".
func CompareCounts(got, want map[string]int64) []string {
	var diffs []string
	for t, w := range want {
		if g, ok := got[t]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: missing, want %d rows", t, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s: %d rows, want %d", t, g, w))
		}
	}
	for t, g := range got {
		if _, ok := want[t]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: %d rows, not in the dump", t, g))
		}
	}
	sort.Strings(diffs)
	return diffs
}

var versionRE = regexp.MustCompile(`(\d+)(?:\.(\d+))?`)

// majorMinor reads the first version number of s.
func majorMinor(s string) (int, int, bool) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, false
	}
	maj, _ := strconv.Atoi(m[1])
	min, _ := strconv.Atoi(m[2])
	return maj, min, true
}
