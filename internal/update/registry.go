package update

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Manifest media types a tag may resolve to: a multi-platform index (OCI or
// Docker's manifest list) or a single manifest. The digest of whichever the
// registry serves is what the Engine records in an image's RepoDigests.
var manifestAccept = []string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}

// Docker Hub's names: the name images carry, the host its API answers on,
// and the key its credentials have in the Docker config file.
const (
	dockerHubDomain  = "docker.io"
	dockerHubAPIHost = "registry-1.docker.io"
	dockerHubAuthKey = "https://index.docker.io/v1/"
)

// Reference is an image name split into its parts.
type Reference struct {
	Domain string // registry host[:port]; docker.io for Docker Hub
	Path   string // repository path, library/NAME for Hub's official images
	Tag    string // "" when the reference is pinned by digest
	Digest string // sha256:... when pinned
}

// ParseReference splits an image name (as a container's Config.Image spells
// it) the way the Engine does: the first component is a registry when it
// holds a dot or a colon or is localhost; the tag defaults to latest.
func ParseReference(s string) (Reference, error) {
	var r Reference
	name := s
	if i := strings.Index(name, "@"); i >= 0 {
		name, r.Digest = name[:i], name[i+1:]
	}
	if i := strings.LastIndex(name, ":"); i >= 0 && !strings.Contains(name[i:], "/") {
		name, r.Tag = name[:i], name[i+1:]
	}
	if name == "" || strings.ContainsAny(name, " \t") {
		return r, fmt.Errorf("image reference %q: not an image name", s)
	}
	first, rest, found := strings.Cut(name, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		r.Domain, r.Path = first, rest
	} else {
		r.Domain, r.Path = dockerHubDomain, name
		if !found {
			r.Path = "library/" + name
		}
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
	}
	return r, nil
}

// Repository is the name the Engine uses before @ in RepoDigests.
func (r Reference) Repository() string {
	if r.Domain == dockerHubDomain {
		return strings.TrimPrefix(r.Path, "library/")
	}
	return r.Domain + "/" + r.Path
}

// String is the reference as pulled: repository and tag.
func (r Reference) String() string {
	if r.Digest != "" {
		return r.Repository() + "@" + r.Digest
	}
	return r.Repository() + ":" + r.Tag
}

// Registry asks registries for manifest digests over the Docker Registry
// HTTP API v2.
type Registry struct {
	// DockerConfig is the folder of the Docker config file (config.json) whose
	// auths hold registry credentials; "" means none are sent.
	DockerConfig string
	// HTTP is the client used; nil means one with RegistryTimeout.
	HTTP *http.Client
}

// DefaultRegistryTimeout bounds one registry request.
const DefaultRegistryTimeout = 30 * time.Second

// Digest returns the digest the registry serves for ref's tag, with one HEAD
// request (plus the token request of a registry that asks for one). A
// registry that cannot be reached, refuses the credentials or does not know
// the tag is one readable error.
func (g *Registry) Digest(ctx context.Context, ref Reference) (string, error) {
	hc := g.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: DefaultRegistryTimeout}
	}
	host := ref.Domain
	if host == dockerHubDomain {
		host = dockerHubAPIHost
	}
	u := scheme(host) + "://" + host + "/v2/" + ref.Path + "/manifests/" + ref.Tag
	user, pass := g.credentials(ctx, ref.Domain)
	head := func(authz string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", strings.Join(manifestAccept, ", "))
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("registry %s: %w", host, unwrapURL(err))
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, nil
	}
	authz := ""
	if user != "" {
		authz = basic(user, pass)
	}
	resp, err := head(authz)
	if err != nil {
		return "", err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		challenge := resp.Header.Get("WWW-Authenticate")
		scheme, params := parseChallenge(challenge)
		switch {
		case strings.EqualFold(scheme, "bearer"):
			tok, err := g.token(ctx, hc, params, ref.Path, user, pass)
			if err != nil {
				return "", fmt.Errorf("registry %s: %s: %w", host, ref.Path, err)
			}
			authz = "Bearer " + tok
		case strings.EqualFold(scheme, "basic") && user != "" && authz == "":
			authz = basic(user, pass)
		default:
			return "", fmt.Errorf("registry %s: %s: unauthorized (HTTP 401; add credentials for %s to the Docker config file)", host, ref.Path, ref.Domain)
		}
		if resp, err = head(authz); err != nil {
			return "", err
		}
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		return "", fmt.Errorf("registry %s: %s: unauthorized (HTTP %d; check the credentials for %s in the Docker config file)", host, ref.Path, resp.StatusCode, ref.Domain)
	case http.StatusNotFound:
		return "", fmt.Errorf("registry %s: %s:%s: no such image or tag (HTTP 404)", host, ref.Path, ref.Tag)
	default:
		return "", fmt.Errorf("registry %s: %s:%s: HTTP %d", host, ref.Path, ref.Tag, resp.StatusCode)
	}
	d := resp.Header.Get("Docker-Content-Digest")
	if !strings.HasPrefix(d, "sha256:") {
		return "", fmt.Errorf("registry %s: %s:%s: no Docker-Content-Digest in the answer", host, ref.Path, ref.Tag)
	}
	return d, nil
}

// token runs the Bearer token flow: GET realm?service=...&scope=pull, with
// basic credentials when there are some, and returns the token.
func (g *Registry) token(ctx context.Context, hc *http.Client, params map[string]string, path, user, pass string) (string, error) {
	realm := params["realm"]
	if realm == "" {
		return "", errors.New("token challenge without a realm")
	}
	q := url.Values{}
	if s := params["service"]; s != "" {
		q.Set("service", s)
	}
	scope := params["scope"]
	if scope == "" {
		scope = "repository:" + path + ":pull"
	}
	q.Set("scope", scope)
	sep := "?"
	if strings.Contains(realm, "?") {
		sep = "&"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm+sep+q.Encode(), nil)
	if err != nil {
		return "", fmt.Errorf("token realm: %w", err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("token: %w", unwrapURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token: unauthorized (HTTP %d)", resp.StatusCode)
	}
	var out struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return "", fmt.Errorf("token: decode answer: %w", err)
	}
	if out.Token == "" {
		out.Token = out.AccessToken
	}
	if out.Token == "" {
		return "", errors.New("token: empty answer")
	}
	return out.Token, nil
}

// credentials are the user and password the Docker config file gives for
// domain, the way the Docker CLI finds them: the registry's credential helper
// (credHelpers), else the credential store (credsStore), else auths ("auth"
// as base64 user:password, or username and password).
func (g *Registry) credentials(ctx context.Context, domain string) (string, string) {
	if g.DockerConfig == "" {
		return "", ""
	}
	b, err := os.ReadFile(filepath.Join(g.DockerConfig, "config.json"))
	if err != nil {
		return "", ""
	}
	var cf struct {
		Auths map[string]struct {
			Auth     string `json:"auth"`
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"auths"`
		CredsStore  string            `json:"credsStore"`
		CredHelpers map[string]string `json:"credHelpers"`
	}
	if json.Unmarshal(b, &cf) != nil {
		return "", ""
	}
	keys := []string{domain, "https://" + domain, "http://" + domain}
	if domain == dockerHubDomain {
		keys = append([]string{dockerHubAuthKey}, keys...)
	}
	helper := cf.CredsStore
	for _, k := range keys {
		if h, ok := cf.CredHelpers[k]; ok {
			helper = h
			break
		}
	}
	if helper != "" {
		return credentialHelper(ctx, helper, keys[0])
	}
	for _, k := range keys {
		a, ok := cf.Auths[k]
		if !ok {
			continue
		}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				continue
			}
			if u, p, ok := strings.Cut(string(raw), ":"); ok {
				return u, p
			}
			continue
		}
		if a.Username != "" {
			return a.Username, a.Password
		}
	}
	return "", ""
}

// credentialHelper runs `docker-credential-NAME get` with the registry on
// its standard input, as the Docker CLI does. A helper that is missing or
// knows no credentials for the registry gives none: the registry then
// answers 401 and the pass says so.
func credentialHelper(ctx context.Context, name, server string) (string, string) {
	ctx, cancel := context.WithTimeout(ctx, DefaultRegistryTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker-credential-"+name, "get")
	cmd.Stdin = strings.NewReader(server)
	out, err := cmd.Output()
	if err != nil {
		return "", ""
	}
	var c struct {
		Username string `json:"Username"`
		Secret   string `json:"Secret"`
	}
	if json.Unmarshal(out, &c) != nil {
		return "", ""
	}
	return c.Username, c.Secret
}

// parseChallenge splits a WWW-Authenticate value: `Bearer realm="...",service="..."`.
func parseChallenge(h string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	params := map[string]string{}
	for rest != "" {
		rest = strings.TrimLeft(rest, " ,")
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		if strings.HasPrefix(v, `"`) {
			end := strings.Index(v[1:], `"`)
			if end < 0 {
				params[strings.ToLower(strings.TrimSpace(k))] = v[1:]
				break
			}
			params[strings.ToLower(strings.TrimSpace(k))] = v[1 : end+1]
			rest = v[end+2:]
			continue
		}
		val, after, _ := strings.Cut(v, ",")
		params[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(val)
		rest = after
	}
	return scheme, params
}

// scheme is http for registries on loopback (the Engine treats 127.0.0.0/8
// and localhost as insecure registries by default) and https otherwise.
func scheme(host string) string {
	h := host
	if sh, _, err := net.SplitHostPort(host); err == nil {
		h = sh
	}
	if h == "localhost" {
		return "http"
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return "http"
	}
	return "https"
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// unwrapURL drops the method and URL net/http puts in front of a transport
// error: the caller names the registry itself.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
