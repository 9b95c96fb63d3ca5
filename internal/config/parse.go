package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/vwstream/vwstream/internal/serverdb"
)

// Accepted-value descriptions shared by errors, help and docs.
const (
	acceptBool     = "true, false, 1, 0, yes, no"
	acceptDuration = "seconds (300) or a Go duration (90s, 5m, 1h30m), greater than 0"
	acceptLeeway   = "seconds (60) or a Go duration (1m), 0 or more"
	acceptPath     = "a file system path"
)

// parseBool accepts the spellings people use in .env files.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, bad("not a boolean", acceptBool)
}

// parseDuration accepts a bare number of seconds (the replaced stacks' convention)
// or a Go duration.
func parseDuration(s string, allowZero bool) (time.Duration, error) {
	s = strings.TrimSpace(s)
	accepted := acceptDuration
	if allowZero {
		accepted = acceptLeeway
	}
	var d time.Duration
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > int64((1<<63-1)/time.Second) || n < -int64((1<<63-1)/time.Second) {
			return 0, bad("out of range", accepted)
		}
		d = time.Duration(n) * time.Second
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, bad("not a duration", accepted)
	}
	switch {
	case d < 0:
		return 0, bad("must not be negative", accepted)
	case d == 0 && !allowZero:
		return 0, bad("must be greater than 0", accepted)
	}
	return d, nil
}

const acceptBytes = "bytes (2147483648) or a size with a unit (500MB, 2GB, 1.5GiB); 0 disables"

// parseBytes reads a size: a bare number of bytes, or a number with a decimal
// (KB, MB, GB, TB) or binary (KiB, MiB, GiB, TiB) unit.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	}
	mult := map[string]float64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}[unit]
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || n < 0 || n*mult > 1<<62 {
		return 0, bad("not a size", acceptBytes)
	}
	return int64(n * mult), nil
}

func parseInt(s string, min, max int) (int, error) {
	accepted := fmt.Sprintf("a whole number from %d to %d", min, max)
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, bad("not a whole number", accepted)
	}
	if n < min || n > max {
		return 0, bad("out of range", accepted)
	}
	return n, nil
}

// parseEnum matches case-insensitively and returns the canonical spelling.
func parseEnum(s string, values []string) (string, error) {
	for _, v := range values {
		if strings.EqualFold(strings.TrimSpace(s), v) {
			return v, nil
		}
	}
	return "", bad("not a known value", strings.Join(values, ", "))
}

const acceptDatabaseURL = "a SQLite file path, sqlite://relative/path or sqlite:///absolute/path; " +
	"postgresql://user:password@host[:port]/db[?sslmode=...] (or postgres://); mysql://user:password@host[:port]/db (MySQL and MariaDB)"

// parseDatabaseURL reduces DATABASE_URL to the SQLite file path vwstream
// replicates, or parses a server database's URL (then the path is "").
func parseDatabaseURL(s string) (string, *serverdb.URL, error) {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "://"); i >= 0 {
		scheme := strings.ToLower(s[:i])
		switch scheme {
		case "sqlite", "sqlite3":
			s = s[i+3:]
		case "postgres", "postgresql", "mysql", "mariadb":
			u, err := serverdb.Parse(s) // its errors never hold the password
			if err != nil {
				return "", nil, bad(err.Error(), acceptDatabaseURL)
			}
			return "", u, nil
		default:
			return "", nil, bad("unknown database scheme "+strconv.Quote(scheme), acceptDatabaseURL)
		}
		if j := strings.IndexByte(s, '?'); j >= 0 {
			s = s[:j]
		}
	}
	if s == "" {
		return "", nil, bad("no file path", acceptDatabaseURL)
	}
	return filepath.Clean(s), nil, nil
}

// parseEndpoint turns an S3 endpoint into a URL, adding https:// when no scheme is given.
func parseEndpoint(s string) (string, error) {
	const accepted = "a URL such as https://s3.example.com or host:port (https:// is assumed)"
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", bad("not a URL", accepted)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", bad("scheme must be http or https", accepted)
	}
	if u.Host == "" {
		return "", bad("no host", accepted)
	}
	if u.User != nil {
		return "", bad("credentials in the URL would be printed with it; set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY instead", accepted)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", bad("an endpoint has no query or fragment", accepted)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// parseHTTPURL checks DOMAIN-like values.
func parseHTTPURL(s string) (string, error) {
	const accepted = "an http:// or https:// URL"
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", bad("not an http(s) URL", accepted)
	}
	return u.String(), nil
}

// parseAddr checks a listen address; "off" disables the listener.
func parseAddr(s string) (string, error) {
	const accepted = "host:port (127.0.0.1:8081, :8081) or off"
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "off") || strings.EqualFold(s, "none") {
		return "", nil
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", bad("not host:port", accepted)
	}
	if _, err := parseInt(port, 0, 65535); err != nil {
		return "", bad("bad port", accepted)
	}
	return s, nil
}

var schemeStart = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

// splitURLs splits a list of URLs on white space, and on commas only where the next
// part starts a new URL, so a comma inside a query (telegram chats=1,2) survives.
func splitURLs(s string) []string {
	var out []string
	for _, field := range strings.Fields(s) {
		parts := strings.Split(field, ",")
		cur := parts[0]
		for _, p := range parts[1:] {
			if schemeStart.MatchString(p) {
				out = append(out, cur)
				cur = p
				continue
			}
			cur += "," + p
		}
		out = append(out, cur)
	}
	var urls []string
	for _, u := range out {
		if u = strings.Trim(u, ","); u != "" {
			urls = append(urls, u)
		}
	}
	return urls
}

// parseNotificationURLs checks shoutrrr URLs without ever echoing one (they hold tokens).
func parseNotificationURLs(s string) ([]string, error) {
	const accepted = "shoutrrr URLs (smtp://..., telegram://..., ntfy://...), separated by spaces or commas"
	urls := splitURLs(s)
	for i, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme == "" || !strings.Contains(raw, "://") {
			return nil, bad(fmt.Sprintf("URL #%d is not a URL", i+1), accepted)
		}
	}
	return urls, nil
}

// parseList splits a comma-separated list, dropping empty items.
func parseList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseRemotes checks rclone destinations: "name:path" or ":backend,opt=x:path".
func parseRemotes(s string) ([]string, error) {
	const accepted = "comma-separated rclone destinations NAME:path (remote NAME from RCLONE_CONFIG_NAME_TYPE)"
	remotes := parseList(s)
	for _, r := range remotes {
		i := strings.IndexByte(r, ':')
		if i < 0 {
			return nil, bad(fmt.Sprintf("%q has no remote name", r), accepted)
		}
		if i == 0 && strings.IndexByte(r[1:], ':') < 0 {
			return nil, bad(fmt.Sprintf("%q has no path after the backend", r), accepted)
		}
	}
	return remotes, nil
}

// parseSources checks BACKUP_SOURCES: absolute folders whose last names, their
// names in a snapshot (sources/<name>), are distinct.
func parseSources(s string) ([]string, error) {
	const accepted = "comma-separated absolute folder paths with distinct last names (/backup/app-data,/backup/dumps)"
	var out []string
	seen := map[string]string{}
	for _, p := range parseList(s) {
		if !filepath.IsAbs(p) {
			return nil, bad(fmt.Sprintf("%q is not an absolute path", p), accepted)
		}
		p = filepath.Clean(p)
		name := filepath.Base(p)
		if name == "/" || name == "." {
			return nil, bad(fmt.Sprintf("%q names no folder", p), accepted)
		}
		if other, ok := seen[name]; ok {
			return nil, bad(fmt.Sprintf("%q and %q would both be sources/%s in a snapshot", other, p, name), accepted)
		}
		seen[name] = p
		out = append(out, p)
	}
	return out, nil
}

// parseAgeRecipients checks AGE_PUBLIC_KEYS: age1... or ssh- public keys.
func parseAgeRecipients(s string) ([]string, error) {
	const accepted = "comma-separated age recipients (age1...) or SSH public keys (ssh-ed25519 ..., ssh-rsa ...)"
	keys := parseList(s)
	for i, k := range keys {
		if !strings.HasPrefix(k, "age1") && !strings.HasPrefix(k, "ssh-") {
			return nil, bad(fmt.Sprintf("key #%d is neither an age nor an SSH public key", i+1), accepted)
		}
	}
	if len(keys) == 0 {
		return nil, bad("no key", accepted)
	}
	return keys, nil
}

const acceptBucketKey = "an age identity (AGE-SECRET-KEY-1...), the bucket key as `age -d keys/age-identity.age` prints it, or ENCRYPTION_KEY_FILE=path"

// parseBucketKey checks ENCRYPTION_KEY holds one age identity, alone or in an
// identity file with comments, and returns it; internal/seal parses it fully.
// Errors never quote the value.
func parseBucketKey(s string) (string, error) {
	var keys []string
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, "AGE-SECRET-KEY-1") {
			return "", bad("not an age identity (AGE-SECRET-KEY-1...)", acceptBucketKey)
		}
		keys = append(keys, line)
	}
	if len(keys) != 1 {
		return "", bad(fmt.Sprintf("want one age identity, found %d", len(keys)), acceptBucketKey)
	}
	return keys[0], nil
}

// parseArmoredKey checks GPG_PUBLIC_KEY_RING holds an armored public key block.
func parseArmoredKey(s string) (string, error) {
	const accepted = "an ASCII-armored OpenPGP public key block (gpg --armor --export), or GPG_PUBLIC_KEY_RING_FILE=path"
	if !strings.Contains(s, "-----BEGIN PGP PUBLIC KEY BLOCK-----") {
		return "", bad("not an armored public key block", accepted)
	}
	return s, nil
}

// parseFilename checks BACKUP_FILENAME: one path segment with known strftime directives.
func parseFilename(s string) (string, error) {
	const accepted = "a file name without / using %Y %y %m %d %H %M %S %j %s %z %Z %%"
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, `/\`) || s == "." || s == ".." {
		return "", bad("must be a file name, not a path", accepted)
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i+1 >= len(s) || !strings.ContainsRune("YymdHMSjszZ%", rune(s[i+1])) {
			return "", bad("unknown % directive", accepted)
		}
		i++
	}
	return s, nil
}

func parseTemplate(s string) (string, error) {
	if _, err := template.New("notification").Parse(s); err != nil {
		return "", bad("not a valid template: "+err.Error(), "a Go text/template ({{.Event}}, {{.Error}} ...)")
	}
	return s, nil
}

func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return 0, bad("not a log level", "debug, info, warn, error")
	}
	return l, nil
}

func parseLocation(s string) (*time.Location, error) {
	loc, err := time.LoadLocation(strings.TrimSpace(s))
	if err != nil {
		return nil, bad("unknown time zone", "an IANA time zone name (UTC, Europe/Berlin, America/New_York)")
	}
	return loc, nil
}

// parseCAPEM checks a CA bundle holds at least one PEM certificate.
func parseCAPEM(data []byte) error {
	if !strings.Contains(string(data), "-----BEGIN CERTIFICATE-----") {
		return bad("file holds no PEM certificate", "a readable PEM file of CA certificates")
	}
	return nil
}

const acceptLabel = "a label value of letters, digits and . _ - (such as true), or key=value (such as backup.stop=true)"

var (
	labelValue = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	labelKey   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
)

// parseLabel checks a label selector: a value, or key=value.
func parseLabel(s string) (string, error) {
	key, val, hasKey := strings.Cut(s, "=")
	if !hasKey {
		key, val = "", s
	}
	if (hasKey && !labelKey.MatchString(key)) || !labelValue.MatchString(val) {
		return "", bad(fmt.Sprintf("%q is not a label value", s), acceptLabel)
	}
	return s, nil
}

const acceptDockerHost = "unix:///path/to/docker.sock or tcp://host:port"

// parseDockerHost checks DOCKER_HOST's scheme (no TLS or ssh transport).
func parseDockerHost(s string) (string, error) {
	if rest, ok := strings.CutPrefix(s, "unix://"); ok && strings.HasPrefix(rest, "/") {
		return s, nil
	}
	if rest, ok := strings.CutPrefix(s, "tcp://"); ok && rest != "" {
		return s, nil
	}
	return "", bad("not a Docker Engine address", acceptDockerHost)
}
