// Package docker is vwstream's only client of the Docker Engine API: version
// negotiation, listing and inspecting containers, stopping and starting them,
// running commands inside them (the Exec API), and what replacing a container
// by a new image takes (raw inspection, pull, create, rename, remove).
//
// It speaks HTTP/1.1 to the Engine itself rather than importing an SDK: the
// handful of endpoints it needs are stable across every Engine users run, and
// the SDKs differ on exactly the point that matters here. The frozen
// github.com/docker/docker client negotiates down to old Engines but is no
// longer maintained; the maintained github.com/moby/moby client refuses
// Engines older than API 1.44, which excludes Debian 12's Engine 20.10
// (API 1.41). New negotiates the highest version both sides speak, between
// MinAPIVersion and MaxAPIVersion, from the Engine's unversioned /version
// answer; an Engine whose minimum is above MaxAPIVersion (or whose maximum is
// below MinAPIVersion) is refused with one readable error.
//
// Adding an endpoint means one method here built on Client.do (JSON in and
// out) or Client.send (a streamed answer), with its request and answer types
// beside it; nothing outside this package knows the wire format. Errors name
// the call and carry the Engine's message in one line; a 404 wraps
// ErrNotFound.
package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// API versions this client speaks. MinAPIVersion is Engine 20.10's, the oldest
// Engine still shipped by a supported distribution; MaxAPIVersion is Engine
// 28's. Engine 29 accepts 1.44 and newer, so it is spoken at MaxAPIVersion.
const (
	MinAPIVersion = "1.41"
	MaxAPIVersion = "1.51"
)

// DefaultHost is where the Engine listens when DOCKER_HOST is empty.
const DefaultHost = "unix:///var/run/docker.sock"

// DefaultTimeout bounds one short API call (list, inspect, start); calls that
// wait on the container (stop, exec) are bounded by their context instead.
const DefaultTimeout = 30 * time.Second

// ErrNotFound is returned (wrapped) when the Engine answers 404.
var ErrNotFound = errors.New("not found")

// Client is a connection to one Engine at one negotiated API version. It is
// safe for concurrent use.
type Client struct {
	host    string // as given, for messages
	base    string // scheme and authority of request URLs
	http    *http.Client
	version string // negotiated API version
	engine  Version
}

// Version is the Engine's /version answer, the fields vwstream reports.
type Version struct {
	Version       string `json:"Version"`       // Engine release, e.g. 20.10.24
	APIVersion    string `json:"ApiVersion"`    // newest API the Engine speaks
	MinAPIVersion string `json:"MinAPIVersion"` // oldest API the Engine accepts
	Os            string `json:"Os"`
	Arch          string `json:"Arch"`
}

// New connects to the Engine at host (unix:///path or tcp://host:port; ""
// means DefaultHost) and negotiates the API version. Its error says what is
// wrong in one line: no socket at the path, no permission, nothing listening,
// an Engine too old or too new.
func New(ctx context.Context, host string) (*Client, error) {
	if host == "" {
		host = DefaultHost
	}
	c := &Client{host: host}
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("docker host %q: %w", host, err)
	}
	tr := &http.Transport{MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second}
	switch u.Scheme {
	case "unix":
		sock := u.Path
		if sock == "" {
			sock = u.Opaque
		}
		if _, err := os.Stat(sock); err != nil {
			return nil, fmt.Errorf("docker host %s: no socket at %s (mount the Docker socket, or set DOCKER_HOST)", host, sock)
		}
		var d net.Dialer
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", sock)
		}
		c.base = "http://docker"
	case "tcp", "http":
		c.base = "http://" + u.Host
	default:
		return nil, fmt.Errorf("docker host %s: unsupported scheme %q (unix:// or tcp://)", host, u.Scheme)
	}
	c.http = &http.Client{Transport: tr}
	if err := c.negotiate(ctx); err != nil {
		tr.CloseIdleConnections()
		return nil, err
	}
	return c, nil
}

// negotiate reads the unversioned /version and picks the version to speak.
func (c *Client) negotiate(ctx context.Context) error {
	if err := c.do(ctx, http.MethodGet, "/version", nil, nil, &c.engine, DefaultTimeout); err != nil {
		return err
	}
	v, err := pick(c.engine.APIVersion, c.engine.MinAPIVersion)
	if err != nil {
		return fmt.Errorf("docker host %s: Engine %s: %w", c.host, c.engine.Version, err)
	}
	c.version = v
	return nil
}

// pick is the highest version in both [MinAPIVersion, MaxAPIVersion] and
// [engineMin, engineMax]. An Engine that does not say its minimum is taken to
// accept anything up to its maximum.
func pick(engineMax, engineMin string) (string, error) {
	if engineMax == "" {
		return "", errors.New("no API version in its /version answer")
	}
	v := MaxAPIVersion
	if compareVersions(engineMax, v) < 0 {
		v = engineMax
	}
	if compareVersions(v, MinAPIVersion) < 0 {
		return "", fmt.Errorf("API %s is older than %s, the oldest vwstream speaks (Engine 20.10)", engineMax, MinAPIVersion)
	}
	if engineMin != "" && compareVersions(v, engineMin) < 0 {
		return "", fmt.Errorf("API %s and newer only, vwstream speaks up to %s", engineMin, MaxAPIVersion)
	}
	return v, nil
}

// compareVersions compares dotted API versions numerically ("1.9" < "1.41").
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// Host is the Engine address as configured.
func (c *Client) Host() string { return c.host }

// APIVersion is the negotiated API version every request uses.
func (c *Client) APIVersion() string { return c.version }

// Engine is the Engine's /version answer read at connection time.
func (c *Client) Engine() Version { return c.engine }

// Close releases idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// apiError is the Engine's error body.
type apiError struct {
	Message string `json:"message"`
}

// do sends one request to path (versioned unless it is /version or /_ping),
// with query parameters q and body in as JSON (nil: none), and decodes a JSON
// answer into out (nil: discarded). timeout 0 means the context's deadline only.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any, timeout time.Duration) error {
	resp, err := c.send(ctx, method, path, q, in, timeout)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("docker %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// send is do without decoding: the caller reads and closes the body of a 2xx
// or 304 answer; any other status is returned as an error with the Engine's
// message.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, in any, timeout time.Duration) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("docker %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	full := c.base
	if c.version != "" && path != "/version" && path != "/_ping" {
		full += "/v" + c.version
	}
	full += path
	if len(q) > 0 {
		full += "?" + q.Encode()
	}
	var cancel context.CancelFunc = func() {}
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, timeout)
	}
	req, err := http.NewRequestWithContext(ctx, method, full, body)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("docker %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		return nil, c.dialError(err)
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusNotModified {
		return resp, nil
	}
	defer resp.Body.Close()
	var ae apiError
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &ae) != nil || ae.Message == "" {
		ae.Message = strings.TrimSpace(string(b))
	}
	err = fmt.Errorf("docker %s %s: %s (HTTP %d)", method, path, ae.Message, resp.StatusCode)
	if resp.StatusCode == http.StatusNotFound {
		err = fmt.Errorf("%w: %w", err, ErrNotFound)
	}
	return nil, err
}

// dialError turns a failed connection into one line naming the host.
func (c *Client) dialError(err error) error {
	switch {
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("docker host %s: permission denied (run as a user in the socket's group, or as root)", c.host)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("docker host %s: %w", c.host, err)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("docker host %s: no Engine answers: %v", c.host, op.Err)
	}
	return fmt.Errorf("docker host %s: %w", c.host, err)
}

// cancelBody releases a request's timeout when its body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
