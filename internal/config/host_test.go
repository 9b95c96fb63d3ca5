package config_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vwstream/vwstream/internal/config"
)

// fakeResolver is the machine with a resolver that knows only names.
type fakeResolver struct {
	config.OSHost
	names map[string][]net.IP
}

func (f fakeResolver) LookupIP(_ context.Context, host string) ([]net.IP, error) {
	if ips, ok := f.names[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// localIP returns an address of a non-loopback interface, "" without one.
func localIP(t *testing.T) string {
	ips, err := config.OSHost{}.LocalIPs()
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() && ip.To4() != nil {
			return ip.String()
		}
	}
	return ""
}

func TestCheckHost(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	file := filepath.Join(dir, "a-file")
	for _, p := range []string{data, filepath.Join(dir, "folder.json")} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(data, "db.sqlite3"), 0o700); err != nil {
		t.Fatal(err)
	}
	host := fakeResolver{names: map[string][]net.IP{
		"vw.local":  {net.ParseIP("127.0.0.1")},
		"elsewhere": {net.ParseIP("192.0.2.7")},
	}}
	base := []string{"DATA_FOLDER=" + data, "DATABASE_URL=" + filepath.Join(data, "vw.sqlite3"),
		"STATUS_FILE=" + filepath.Join(dir, "s.json"), "STATUS_ADDR=off"}
	good := [][]string{
		{},
		{"DATA_FOLDER=" + filepath.Join(dir, "not-yet"), "DATABASE_URL="}, // run creates it
		{"STATUS_ADDR=127.0.0.1:8081"}, {"STATUS_ADDR=:8081"}, {"STATUS_ADDR=0.0.0.0:8081"},
		{"STATUS_ADDR=[::]:8081"}, {"STATUS_ADDR=127.0.0.2:8081"}, {"STATUS_ADDR=vw.local:8081"},
		{"S3_BUCKET=b", "ALLOW_UNENCRYPTED=true", "LOCAL_TARGET=" + file}, // LOCAL_TARGET unused
	}
	if ip := localIP(t); ip != "" {
		good = append(good, []string{"STATUS_ADDR=" + ip + ":8081"})
	}
	for _, env := range good {
		c := mustLoad(t, nil, append(append([]string{}, env...), base...)...) // the first wins
		if err := c.CheckHost(host); err != nil {
			t.Errorf("%q: refused: %v", env, err)
		}
	}
	for _, tc := range []struct {
		name, value, reason string
	}{
		{"DATA_FOLDER", file, "is a file"},
		{"ATTACHMENTS_FOLDER", file, "is a file"},
		{"SENDS_FOLDER", file, "is a file"},
		{"ICON_CACHE_FOLDER", file, "is a file"},
		{"TMP_FOLDER", file, "is a file"},
		{"LOCAL_TARGET", file, "is a file"},
		{"DATABASE_URL", filepath.Join(data, "db.sqlite3"), "is a folder"},
		{"STATUS_FILE", filepath.Join(dir, "missing", "s.json"), "does not exist"},
		{"STATUS_FILE", filepath.Join(file, "s.json"), "is a file"},
		{"STATUS_FILE", filepath.Join(dir, "folder.json"), "is a folder"},
		{"STATUS_ADDR", "192.0.2.1:8081", "not an address of this machine"},
		{"STATUS_ADDR", "elsewhere:8081", "not an address of this machine"},
		{"STATUS_ADDR", "nowhere.invalid:8081", "does not resolve"},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			env := append([]string{tc.name + "=" + tc.value}, base...) // the first wins
			if tc.name == "DATA_FOLDER" {
				env = append([]string{"DATABASE_URL=" + filepath.Join(file, "db.sqlite3")}, env...)
			}
			c := mustLoad(t, nil, env...)
			err := c.CheckHost(host)
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want *config.Error", err)
			}
			msg := err.Error()
			if ce.Name != tc.name || !strings.Contains(msg, tc.name) || !strings.Contains(msg, tc.reason) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %s: %s", msg, tc.name, tc.reason)
			}
		})
	}
}

// The real machine: its own addresses pass, a documentation address does not.
func TestCheckHost_RealInterfaces(t *testing.T) {
	dir := t.TempDir()
	env := []string{"DATA_FOLDER=" + dir, "STATUS_FILE=" + filepath.Join(dir, "s.json")}
	for addr, ok := range map[string]bool{"127.0.0.1:1": true, "localhost:1": true, "198.51.100.9:1": false} {
		err := mustLoad(t, nil, append(env, "STATUS_ADDR="+addr)...).CheckHost(config.OSHost{})
		if (err == nil) != ok {
			t.Errorf("STATUS_ADDR=%s: %v", addr, err)
		}
	}
}
