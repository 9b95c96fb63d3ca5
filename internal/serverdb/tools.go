package serverdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// Tools are the stock client programs used for a kind of server. Empty
// fields are looked up on PATH (mariadb-dump before mysqldump, mariadb before
// mysql).
type Tools struct {
	Dump string // pg_dump or mariadb-dump/mysqldump
	Load string // pg_restore or mariadb/mysql
}

func (t Tools) resolve(kind string) (Tools, error) {
	var err error
	if t.Dump == "" {
		if kind == PostgreSQL {
			t.Dump, err = lookPath("pg_dump")
		} else {
			t.Dump, err = lookPath("mariadb-dump", "mysqldump")
		}
		if err != nil {
			return t, err
		}
	}
	if t.Load == "" {
		if kind == PostgreSQL {
			t.Load, err = lookPath("pg_restore")
		} else {
			t.Load, err = lookPath("mariadb", "mysql")
		}
	}
	return t, err
}

func lookPath(names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not installed (not on PATH): install the database client tools", strings.Join(names, " or "))
}

// ToolCheck is what `check` reports of the dump tool.
type ToolCheck struct {
	Path    string `json:"path"`
	Version string `json:"version"` // the tool's --version line
	Server  Server `json:"server"`
	OK      bool   `json:"ok"`
	Problem string `json:"problem,omitempty"`
}

// ErrToolSkew reports a dump tool that cannot dump the server.
var ErrToolSkew = errors.New("dump tool cannot dump this server")

// CheckTool runs the dump tool's --version and compares it with the server:
// pg_dump refuses a server of a newer major version, and a mysqldump older
// than the server, or of the other flavour (MySQL against MariaDB or the
// reverse), writes dumps the server's own tools would not.
func CheckTool(ctx context.Context, tools Tools, srv Server) (ToolCheck, error) {
	t, err := tools.resolve(srv.Kind)
	c := ToolCheck{Path: t.Dump, Server: srv}
	if err != nil {
		c.Problem = err.Error()
		return c, fmt.Errorf("%w: %s", ErrToolSkew, c.Problem)
	}
	out, err := exec.CommandContext(ctx, t.Dump, "--version").Output()
	if err != nil {
		c.Problem = fmt.Sprintf("%s --version: %v", t.Dump, err)
		return c, fmt.Errorf("%w: %s", ErrToolSkew, c.Problem)
	}
	c.Version = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	c.Problem = skew(srv, c.Version)
	if c.Problem != "" {
		return c, fmt.Errorf("%w: %s", ErrToolSkew, c.Problem)
	}
	c.OK = true
	return c, nil
}

// skew explains why a tool reporting toolVersion cannot dump srv, or "".
func skew(srv Server, toolVersion string) string {
	tv := toolVersion
	if i := strings.Index(tv, "Distrib "); i >= 0 { // mysqldump  Ver 10.19 Distrib 10.11.19-MariaDB
		tv = tv[i+len("Distrib "):]
	} else if i := strings.Index(tv, ") "); i >= 0 { // pg_dump (PostgreSQL) 15.18
		tv = tv[i+2:]
	} else if i := strings.Index(tv, " from "); i >= 0 { // mariadb-dump from 11.4.2-MariaDB
		tv = tv[i+len(" from "):]
	} else if i := strings.Index(tv, "Ver "); i >= 0 { // mysqldump  Ver 8.0.36 for Linux
		tv = tv[i+len("Ver "):]
	}
	tmaj, tmin, ok1 := majorMinor(tv)
	smaj, smin, ok2 := majorMinor(srv.Version)
	if !ok1 || !ok2 {
		return fmt.Sprintf("cannot compare the dump tool's version %q with the server's %q", toolVersion, srv.Version)
	}
	if srv.Kind == PostgreSQL {
		if tmaj < smaj {
			return fmt.Sprintf("pg_dump %d.%d is older than the PostgreSQL %d server and refuses to dump it; install the PostgreSQL %d (or newer) client tools", tmaj, tmin, smaj, smaj)
		}
		return ""
	}
	toolMaria := strings.Contains(strings.ToLower(toolVersion), "mariadb")
	switch {
	case srv.MariaDB && !toolMaria:
		return fmt.Sprintf("the dump tool is MySQL's (%s) and the server is MariaDB %d.%d; install MariaDB's client tools (mariadb-dump)", toolVersion, smaj, smin)
	case !srv.MariaDB && toolMaria:
		return fmt.Sprintf("the dump tool is MariaDB's (%s) and the server is MySQL %d.%d; install MySQL's client tools (mysqldump)", toolVersion, smaj, smin)
	case tmaj < smaj || (tmaj == smaj && tmin < smin):
		return fmt.Sprintf("the dump tool (%d.%d) is older than the server (%d.%d); install client tools of the server's version or newer", tmaj, tmin, smaj, smin)
	}
	return ""
}

// run starts a tool with the password in its environment, stdin and stdout
// as given, and returns its error with the end of its stderr, scrubbed.
func (u *URL) run(ctx context.Context, name string, args []string, stdin io.Reader, stdout io.Writer) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), u.passwordEnv()...)
	cmd.Stdin, cmd.Stdout = stdin, stdout
	var stderr tailBuffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.Join(strings.Fields(stderr.String()), " ")
		if msg == "" {
			msg = err.Error()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return u.scrubbed(fmt.Errorf("%s: %s", baseName(name), msg))
	}
	return nil
}

func baseName(p string) string { return p[strings.LastIndex(p, "/")+1:] }

// passwordEnv hands the password to the tools: PGPASSWORD and MYSQL_PWD are
// read by libpq and the MySQL/MariaDB clients and are not visible in ps.
func (u *URL) passwordEnv() []string {
	if u.Password == "" {
		return nil
	}
	if u.Kind == PostgreSQL {
		return []string{"PGPASSWORD=" + u.Password, "PGCONNECT_TIMEOUT=10"}
	}
	return []string{"MYSQL_PWD=" + u.Password}
}

// mysqlArgs are the connection options of the MySQL/MariaDB tools (the
// password goes in MYSQL_PWD).
func (u *URL) mysqlArgs() []string {
	args := []string{"--no-defaults", "--user=" + u.User}
	if u.Socket != "" {
		args = append(args, "--protocol=SOCKET", "--socket="+u.Socket)
	} else {
		args = append(args, "--protocol=TCP", "--host="+u.Host, fmt.Sprintf("--port=%d", u.Port))
	}
	switch strings.ToLower(u.Params.Get("ssl_mode")) {
	case "disabled":
		args = append(args, "--skip-ssl")
	case "required":
		args = append(args, "--ssl")
	case "verify_ca", "verify_identity":
		args = append(args, "--ssl", "--ssl-verify-server-cert")
	}
	return args
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct{ b bytes.Buffer }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b.Write(p)
	if t.b.Len() > 4096 {
		rest := t.b.Bytes()[t.b.Len()-4096:]
		t.b = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return t.b.String() }
