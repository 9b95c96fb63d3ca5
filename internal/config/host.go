package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Host is what CheckHost asks of the machine; OSHost answers from this one.
type Host interface {
	// Stat is os.Stat.
	Stat(name string) (fs.FileInfo, error)
	// LocalIPs lists the addresses assigned to this machine's interfaces.
	LocalIPs() ([]net.IP, error)
	// LookupIP resolves a host name.
	LookupIP(ctx context.Context, host string) ([]net.IP, error)
}

// OSHost is the machine vwstream runs on.
type OSHost struct{}

// Stat is os.Stat.
func (OSHost) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

// LocalIPs lists the addresses of every interface.
func (OSHost) LocalIPs() ([]net.IP, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var ips []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			ips = append(ips, n.IP)
		}
	}
	return ips, nil
}

// LookupIP resolves host with the system resolver.
func (OSHost) LookupIP(ctx context.Context, host string) ([]net.IP, error) {
	return net.DefaultResolver.LookupIP(ctx, "ip", host)
}

// lookupTimeout bounds the resolution of STATUS_ADDR's host name.
const lookupTimeout = 5 * time.Second

// CheckHost checks the configuration against the machine, where Load only
// parses: a folder variable naming a file, a database path that is a folder,
// STATUS_FILE in a folder that does not exist, STATUS_ADDR on an address this
// machine does not have. A folder that does not exist yet is fine (run creates
// the ones it needs, a serverless start restores them). config, check and run
// call it after Load; its errors are *Error, exit 2.
func (c *Config) CheckHost(h Host) error {
	folders := [][2]string{{"DATA_FOLDER", c.DataFolder}, {"ATTACHMENTS_FOLDER", c.Vaultwarden.AttachmentsFolder},
		{"SENDS_FOLDER", c.Vaultwarden.SendsFolder}, {"ICON_CACHE_FOLDER", c.Vaultwarden.IconCacheFolder},
		{"TMP_FOLDER", c.Vaultwarden.TmpFolder}}
	if !c.Remote() {
		folders = append(folders, [2]string{"LOCAL_TARGET", c.LocalTarget})
	}
	for _, f := range folders {
		if st, err := h.Stat(f[1]); err == nil && !st.IsDir() {
			return c.errFor(f[0], "is a file, not a folder", "a folder, or a path where one can be created")
		}
	}
	if st, err := h.Stat(c.DBPath); c.Server == nil && err == nil && st.IsDir() {
		return c.errFor("DATABASE_URL", "is a folder, not a database file", "a SQLite file path in DATA_FOLDER")
	}
	if err := c.checkStatusFile(h); err != nil {
		return err
	}
	return c.checkStatusAddr(h)
}

func (c *Config) checkStatusFile(h Host) error {
	const accepted = "a file path in an existing folder"
	dir := filepath.Dir(c.Health.StatusFile)
	st, err := h.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return c.errFor("STATUS_FILE", fmt.Sprintf("its folder %s does not exist", dir), accepted)
	case err != nil:
		return c.errFor("STATUS_FILE", fmt.Sprintf("its folder %s: %v", dir, err), accepted)
	case !st.IsDir():
		return c.errFor("STATUS_FILE", fmt.Sprintf("%s is a file, not a folder", dir), accepted)
	}
	if st, err := h.Stat(c.Health.StatusFile); err == nil && st.IsDir() {
		return c.errFor("STATUS_FILE", "is a folder, not a file", accepted)
	}
	return nil
}

// checkStatusAddr refuses a listen address no interface of this machine has:
// the listener would fail at start, or (a host name resolving elsewhere) the
// healthcheck would ask another machine.
func (c *Config) checkStatusAddr(h Host) error {
	const accepted = "host:port with an address of this machine (127.0.0.1:8081, :8081, 0.0.0.0:8081) or off"
	if c.Health.StatusAddr == "" {
		return nil
	}
	host, _, _ := net.SplitHostPort(c.Health.StatusAddr)
	if host == "" {
		return nil
	}
	ips := []net.IP{net.ParseIP(host)}
	if ips[0] == nil {
		ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
		defer cancel()
		var err error
		if ips, err = h.LookupIP(ctx, host); err != nil || len(ips) == 0 {
			return c.errFor("STATUS_ADDR", fmt.Sprintf("host %s does not resolve", host), accepted)
		}
	}
	local, err := h.LocalIPs()
	if err != nil {
		return c.errFor("STATUS_ADDR", "cannot list this machine's addresses: "+err.Error(), accepted)
	}
	for _, ip := range ips {
		if ip.IsUnspecified() || ip.IsLoopback() || slices.ContainsFunc(local, ip.Equal) {
			return nil
		}
	}
	return c.errFor("STATUS_ADDR", fmt.Sprintf("%s is not an address of this machine", host), accepted)
}
