// Package serverdb owns Vaultwarden's server databases, PostgreSQL and
// MySQL/MariaDB: it parses their DATABASE_URL, connects (pgx,
// go-sql-driver/mysql), takes consistent online dumps with the stock tools
// (pg_dump, mysqldump/mariadb-dump) while counting the rows of every table in
// the same snapshot, loads a dump into an empty database (pg_restore, the
// mysql/mariadb client) and checks that the dump tool on PATH can dump the
// server. The password is handed to the tools in their environment, never on
// a command line, and every error and description it produces is scrubbed of
// it.
package serverdb

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Kinds of server database.
const (
	PostgreSQL = "postgresql"
	MySQL      = "mysql" // MySQL and MariaDB: Vaultwarden names both mysql://
)

// Default ports when the URL names none.
const (
	DefaultPostgreSQLPort = 5432
	DefaultMySQLPort      = 3306
)

// URL is a parsed server DATABASE_URL. Its String method hides the password,
// so a URL can be logged or wrapped into an error as it is.
type URL struct {
	Kind     string // PostgreSQL or MySQL
	User     string
	Password string
	Host     string // host name or address; "" with Socket
	Port     int
	Socket   string // Unix socket folder (PostgreSQL host=) or file (MySQL unix_socket=)
	Database string
	Params   url.Values // query parameters as given (sslmode, ssl_mode, ...)
	raw      string
}

// IsServer reports whether DATABASE_URL names a server database rather than a
// SQLite file, the way Vaultwarden decides it: by the URL's scheme.
func IsServer(s string) bool {
	scheme, _, ok := strings.Cut(strings.TrimSpace(s), "://")
	if !ok {
		return false
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql", "mysql":
		return true
	}
	return false
}

// Parse reads a postgresql://, postgres:// or mysql:// URL as Vaultwarden
// accepts it: user and password (percent-encoded), host, optional port,
// database, and query parameters (sslmode=... for PostgreSQL, ssl_mode=... and
// unix_socket=... for MySQL). Errors never contain the password.
func Parse(s string) (*URL, error) {
	s = strings.TrimSpace(s)
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		return nil, errors.New("not a URL: no scheme://")
	}
	u := &URL{raw: s}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		u.Kind, u.Port = PostgreSQL, DefaultPostgreSQLPort
	case "mysql":
		u.Kind, u.Port = MySQL, DefaultMySQLPort
	case "mariadb":
		return nil, errors.New("Vaultwarden names MariaDB mysql://; use mysql://")
	default:
		return nil, fmt.Errorf("unknown database scheme %q", scheme)
	}
	pu, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the whole URL, password included: say what, not where.
		return nil, errors.New("not a valid URL (a password with @, :, / or # must be percent-encoded)")
	}
	if pu.User != nil {
		u.User = pu.User.Username()
		u.Password, _ = pu.User.Password()
	}
	u.Params = pu.Query()
	if p := u.Params.Get("password"); p != "" && u.Password == "" {
		u.Password = p // libpq accepts the password as a parameter too
	}
	u.Params.Del("password")
	u.Database = strings.TrimPrefix(pu.Path, "/")
	if u.Database == "" {
		return nil, errors.New("no database name (the URL's path)")
	}
	if strings.Contains(u.Database, "/") {
		return nil, fmt.Errorf("database name %q has a slash", u.Database)
	}
	u.Host = pu.Hostname()
	if p := pu.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("port %q is not a port number", p)
		}
		u.Port = n
	}
	switch u.Kind {
	case PostgreSQL:
		// libpq: host=/path in the query names a socket folder.
		if h := u.Params.Get("host"); strings.HasPrefix(h, "/") {
			u.Socket = h
		}
		if v := u.Params.Get("sslmode"); v != "" && !oneOf(v, "disable", "allow", "prefer", "require", "verify-ca", "verify-full") {
			return nil, fmt.Errorf("sslmode %q is not one of disable, allow, prefer, require, verify-ca, verify-full", v)
		}
	case MySQL:
		u.Socket = u.Params.Get("unix_socket")
		if v := u.Params.Get("ssl_mode"); v != "" && !oneOf(strings.ToLower(v), "disabled", "preferred", "required", "verify_ca", "verify_identity") {
			return nil, fmt.Errorf("ssl_mode %q is not one of disabled, preferred, required, verify_ca, verify_identity", v)
		}
	}
	if u.Host == "" && u.Socket == "" {
		return nil, errors.New("no host")
	}
	if u.User == "" {
		return nil, errors.New("no user name")
	}
	return u, nil
}

func oneOf(v string, values ...string) bool {
	for _, x := range values {
		if v == x {
			return true
		}
	}
	return false
}

// String is the URL with the password replaced by xxxxx.
func (u *URL) String() string {
	out := url.URL{Scheme: u.Kind, Path: "/" + u.Database, RawQuery: u.Params.Encode()}
	if u.Password != "" {
		out.User = url.UserPassword(u.User, "xxxxx")
	} else {
		out.User = url.User(u.User)
	}
	if u.Host != "" {
		out.Host = net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
	}
	return out.String()
}

// Addr is host:port, or the socket, for humans and errors.
func (u *URL) Addr() string {
	if u.Host == "" {
		return u.Socket
	}
	return net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
}

// WithDatabase is a copy of u naming another database on the same server.
func (u *URL) WithDatabase(name string) *URL {
	c := *u
	c.Database = name
	c.Params = url.Values{}
	for k, v := range u.Params {
		c.Params[k] = append([]string(nil), v...)
	}
	c.raw = ""
	return &c
}

// Scrub removes the password, raw and percent-encoded, from a text produced
// by a driver or a tool; errors of this package pass through it.
func (u *URL) Scrub(s string) string {
	if u == nil || len(u.Password) < 3 {
		return s // too short to tell from ordinary text; such a password is refused at check
	}
	for _, p := range []string{u.Password, url.QueryEscape(u.Password), url.PathEscape(u.Password)} {
		s = strings.ReplaceAll(s, p, "xxxxx")
	}
	return s
}

// scrubbed wraps err so its text never holds the password; errors.Is still
// sees the chain.
func (u *URL) scrubbed(err error) error {
	if err == nil {
		return nil
	}
	return &scrubError{text: u.Scrub(strings.Join(strings.Fields(err.Error()), " ")), err: err}
}

type scrubError struct {
	text string
	err  error
}

func (e *scrubError) Error() string { return e.text }
func (e *scrubError) Unwrap() error { return e.err }
