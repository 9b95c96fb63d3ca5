package status

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// dialAddr turns a listen address into one to connect to: an empty or
// unspecified host (":8081", "0.0.0.0:8081", "[::]:8081") means this host.
func dialAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// StatusURL is where a node listening on addr serves its status document.
func StatusURL(addr string) string { return "http://" + dialAddr(addr) + "/status" }

// Fetch gets the status document from a running node listening on addr.
func Fetch(ctx context.Context, addr string) (*Status, error) {
	u := StatusURL(addr)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", u, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", u, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: %s", u, resp.Status)
	}
	var doc Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("get %s: %w", u, err)
	}
	return &doc, nil
}

// Load gets the status document from the node at addr when it answers, else from
// the file at path; either may be empty (not configured). source says where the
// document came from. When neither works the error names both attempts.
func Load(ctx context.Context, addr, path string) (doc *Status, source string, err error) {
	var tried []string
	if addr != "" {
		doc, err := Fetch(ctx, addr)
		if err == nil {
			return doc, StatusURL(addr), nil
		}
		tried = append(tried, err.Error())
	}
	if path != "" {
		doc, err := ReadFile(path)
		if err == nil {
			return doc, path, nil
		}
		tried = append(tried, err.Error())
	}
	if len(tried) == 0 {
		return nil, "", errors.New("no status source: STATUS_ADDR is off and STATUS_FILE is empty")
	}
	return nil, "", fmt.Errorf("no status available (is vwstream run running?): %s", strings.Join(tried, "; "))
}

// AliveURL is Vaultwarden's health endpoint on this host: ROCKET_PORT on the
// loopback, under DOMAIN's path, over https when ROCKET_TLS is set.
func AliveURL(port int, rocketTLS, domain string) string {
	scheme := "http"
	if strings.TrimSpace(rocketTLS) != "" {
		scheme = "https"
	}
	path := ""
	if u, err := url.Parse(domain); err == nil {
		path = strings.TrimRight(u.EscapedPath(), "/")
	}
	return scheme + "://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + path + "/alive"
}

// CheckAlive asks Vaultwarden's /alive (which also opens a database connection).
// Certificates are not verified: the probe sends nothing secret and believes
// only a status code, and Vaultwarden's certificate names the public host (or
// is self-signed) while the probe goes to the loopback or a Compose service
// name.
func CheckAlive(ctx context.Context, aliveURL string) error {
	client := &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // see above
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, aliveURL, nil)
	if err != nil {
		return fmt.Errorf("vaultwarden: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("vaultwarden: %s: %w", aliveURL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("vaultwarden: %s answered %s", aliveURL, resp.Status)
	}
	return nil
}

// unwrapURLError drops url.Error's repetition of the method and URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// PromoteURL is where a secondary listening on addr accepts `vwstream promote`.
func PromoteURL(addr string) string { return "http://" + dialAddr(addr) + "/promote" }
