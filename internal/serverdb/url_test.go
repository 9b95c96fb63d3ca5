package serverdb_test

import (
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/serverdb"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in                   string
		kind, user, host, db string
		port                 int
		socket, shown        string
	}{
		{"postgresql://vw:p%40ss%2Fw0rd@db.example:5433/vaultwarden?sslmode=require", serverdb.PostgreSQL, "vw", "db.example", "vaultwarden", 5433, "",
			"postgresql://vw:xxxxx@db.example:5433/vaultwarden?sslmode=require"},
		{"postgres://vw:secret@db/vw", serverdb.PostgreSQL, "vw", "db", "vw", 5432, "", "postgresql://vw:xxxxx@db:5432/vw"},
		{"postgresql://vw:secret@/vw?host=/run/postgresql", serverdb.PostgreSQL, "vw", "", "vw", 5432, "/run/postgresql",
			"postgresql://vw:xxxxx@/vw?host=%2Frun%2Fpostgresql"},
		{"mysql://vw:secret@mariadb/vaultwarden", serverdb.MySQL, "vw", "mariadb", "vaultwarden", 3306, "", "mysql://vw:xxxxx@mariadb:3306/vaultwarden"},
		{"MySQL://vw:secret@10.0.0.5:3307/vw?ssl_mode=required", serverdb.MySQL, "vw", "10.0.0.5", "vw", 3307, "", "mysql://vw:xxxxx@10.0.0.5:3307/vw?ssl_mode=required"},
	} {
		u, err := serverdb.Parse(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.shown, err)
			continue
		}
		if u.Kind != c.kind || u.User != c.user || u.Host != c.host || u.Database != c.db || u.Port != c.port || u.Socket != c.socket {
			t.Errorf("%s parsed as %+v", c.shown, *u)
		}
		if u.String() != c.shown {
			t.Errorf("String() = %q, want %q", u.String(), c.shown)
		}
		if u.Password == "" {
			t.Errorf("%s: no password", c.shown)
		}
	}
	if u, _ := serverdb.Parse("postgresql://vw:p%40ss%2Fw0rd@db/vw"); u.Password != "p@ss/w0rd" {
		t.Errorf("percent-encoded password = %q", u.Password)
	}
	if u, _ := serverdb.Parse("postgresql://vw@db/vw?password=s3cretpw&sslmode=disable"); u.Password != "s3cretpw" || strings.Contains(u.String(), "s3cretpw") {
		t.Errorf("password parameter: %q, shown as %s", u.Password, u)
	}
}

func TestParse_Refusals(t *testing.T) {
	for in, want := range map[string]string{
		"postgresql://vw:s3cretpw@db/":             "no database name",
		"postgresql://vw:s3cretpw@db:99999/vw":     "not a port number",
		"postgresql://vw:s3cretpw@db/vw?sslmode=x": "sslmode",
		"mysql://vw:s3cretpw@/vw":                  "no host",
		"mysql://:s3cretpw@db/vw":                  "no user name",
		"mariadb://vw:s3cretpw@db/vw":              "use mysql://",
		"postgresql://vw:s3cret pw%zz@db/vw":       "percent-encoded",
	} {
		_, err := serverdb.Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", want, err, want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the password: %v", err)
		}
	}
	for in, want := range map[string]bool{"postgresql://a@b/c": true, "postgres://x": true, "mysql://x": true,
		"sqlite:///data/db.sqlite3": false, "/data/db.sqlite3": false, "mariadb://x": false} {
		if serverdb.IsServer(in) != want {
			t.Errorf("IsServer(%q) = %v", in, !want)
		}
	}
}

func TestScrub(t *testing.T) {
	u, err := serverdb.Parse("postgresql://vw:p%40ss%2Fw0rd@db/vw")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"x p@ss/w0rd y", "x p%40ss%2Fw0rd y"} {
		if got := u.Scrub(s); strings.Contains(strings.ToLower(got), "w0rd") {
			t.Errorf("Scrub(%q) = %q", s, got)
		}
	}
}
