package update_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vwstream/vwstream/internal/update"
)

func TestParseReference(t *testing.T) {
	for in, want := range map[string]update.Reference{
		"vaultwarden/server":              {Domain: "docker.io", Path: "vaultwarden/server", Tag: "latest"},
		"nginx:1.27":                      {Domain: "docker.io", Path: "library/nginx", Tag: "1.27"},
		"ghcr.io/o/r:v2":                  {Domain: "ghcr.io", Path: "o/r", Tag: "v2"},
		"127.0.0.1:5000/app":              {Domain: "127.0.0.1:5000", Path: "app", Tag: "latest"},
		"localhost/a/b:x":                 {Domain: "localhost", Path: "a/b", Tag: "x"},
		"r.example/app@sha256:" + hex64(): {Domain: "r.example", Path: "app", Digest: "sha256:" + hex64()},
	} {
		got, err := update.ParseReference(in)
		if err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", in, got, err, want)
		}
	}
	if r, _ := update.ParseReference("nginx"); r.Repository() != "nginx" || r.String() != "nginx:latest" {
		t.Errorf("hub official image: %s %s", r.Repository(), r.String())
	}
}

func hex64() string { return strings.Repeat("ab", 32) }

// tokenRegistry answers like Docker Hub: 401 with a Bearer challenge, a token
// realm that wants the config file's credentials, then the manifest's digest
// to a HEAD carrying the token and asking for an OCI index.
func tokenRegistry(t *testing.T, user, pass string) (*httptest.Server, *atomic.Int32) {
	var heads atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/token":
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass || r.URL.Query().Get("scope") != "repository:team/app:pull" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = w.Write([]byte(`{"token":"t0k"}`))
		case r.Method == http.MethodHead && r.URL.Path == "/v2/team/app/manifests/stable":
			heads.Add(1)
			if r.Header.Get("Authorization") != "Bearer t0k" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="test",scope="repository:team/app:pull"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			if !strings.Contains(r.Header.Get("Accept"), "application/vnd.oci.image.index.v1+json") {
				w.WriteHeader(http.StatusNotAcceptable)
				return
			}
			w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
			w.Header().Set("Docker-Content-Digest", "sha256:"+hex64())
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &heads
}

func dockerConfig(t *testing.T, host, user, pass string) string {
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"`+host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRegistry_BearerTokenWithConfigCredentials(t *testing.T) {
	srv, heads := tokenRegistry(t, "alice", "s3cret-pass")
	host := strings.TrimPrefix(srv.URL, "http://") // 127.0.0.1:PORT: plain HTTP, as the Engine does
	ref, _ := update.ParseReference(host + "/team/app:stable")
	g := &update.Registry{DockerConfig: dockerConfig(t, host, "alice", "s3cret-pass")}
	d, err := g.Digest(t.Context(), ref)
	if err != nil || d != "sha256:"+hex64() {
		t.Fatalf("digest %q, %v", d, err)
	}
	if n := heads.Load(); n != 2 {
		t.Errorf("%d HEAD requests, want 2 (the challenge and the answer)", n)
	}

	// Wrong credentials: one line naming the registry, never the password.
	g = &update.Registry{DockerConfig: dockerConfig(t, host, "alice", "wrong-pass")}
	_, err = g.Digest(t.Context(), ref)
	if err == nil || !strings.Contains(err.Error(), "unauthorized") || strings.Contains(err.Error(), "wrong-pass") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("wrong credentials: %v", err)
	}
	// No credentials: the token realm refuses anonymous access.
	_, err = (&update.Registry{}).Digest(t.Context(), ref)
	if err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Fatalf("no credentials: %v", err)
	}
	// Unknown tag: 404 in one line.
	missing, _ := update.ParseReference(host + "/team/other:stable")
	_, err = (&update.Registry{}).Digest(t.Context(), missing)
	if err == nil || !strings.Contains(err.Error(), "no such image or tag (HTTP 404)") {
		t.Fatalf("missing: %v", err)
	}
}

// TestRegistry_CredentialHelper: credHelpers names a helper for the registry
// (run as docker-credential-NAME get, the server on its input), which wins
// over credsStore and auths; a helper that is not installed gives no
// credentials, and the registry's refusal is the one line.
func TestRegistry_CredentialHelper(t *testing.T) {
	srv, _ := tokenRegistry(t, "bob", "helper-secret")
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, _ := update.ParseReference(host + "/team/app:stable")
	bin := t.TempDir()
	// The helper answers only for this registry, as real helpers do.
	script := "#!/bin/sh\nread server\n[ \"$server\" = \"" + host + "\" ] || { echo 'credentials not found' >&2; exit 1; }\n" +
		`echo '{"ServerURL":"'$server'","Username":"bob","Secret":"helper-secret"}'` + "\n"
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-vwtest"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	conf := func(body string) *update.Registry {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return &update.Registry{DockerConfig: dir}
	}
	wrongAuth := base64.StdEncoding.EncodeToString([]byte("bob:stale"))
	for _, body := range []string{
		`{"credHelpers":{"` + host + `":"vwtest"},"credsStore":"absent","auths":{"` + host + `":{"auth":"` + wrongAuth + `"}}}`,
		`{"credsStore":"vwtest","auths":{"` + host + `":{"auth":"` + wrongAuth + `"}}}`,
	} {
		if d, err := conf(body).Digest(t.Context(), ref); err != nil || d != "sha256:"+hex64() {
			t.Fatalf("%s: digest %q, %v", body, d, err)
		}
	}
	_, err := conf(`{"credsStore":"not-installed"}`).Digest(t.Context(), ref)
	if err == nil || !strings.Contains(err.Error(), "unauthorized") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("missing helper: %v", err)
	}
}
