package status

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// promoteBodyLimit bounds the JSON body of POST /promote.
const promoteBodyLimit = 4096

// PromoteRequest is the JSON body of POST /promote.
type PromoteRequest struct {
	// Force takes the lease at once instead of waiting for it to expire.
	Force bool `json:"force"`
}

// PromoteHandler guards promote, the handler of POST /promote, for a status
// endpoint listening on addr. A request must carry "Authorization: Bearer
// <token>", a JSON content type and body (PromoteRequest), and no Origin
// header: a web page in a browser on the host can send a POST to loopback,
// but not without an Origin, and not with that content type without a CORS
// preflight the endpoint never answers. The token is token (PROMOTE_TOKEN)
// or, when empty, the one in the file at tokenPath (in the data folder),
// created if missing: `vwstream promote`, run on the same host as the same
// user, reads it there. Whoever can read that file can promote.
// Without PROMOTE_TOKEN, promote is never served to the network: on an addr
// other than loopback (a pod's ":8081", for its probes) it answers loopback
// peers only, which is where `vwstream promote` on the host (kubectl exec,
// docker exec) connects from. A passed request reaches promote with
// ?force=true when the body asks for it.
func PromoteHandler(addr, token, tokenPath string, promote http.Handler) (http.Handler, error) {
	loopbackOnly := false
	if token == "" {
		loopbackOnly = !LoopbackAddr(addr)
		var err error
		if token, err = EnsurePromoteToken(tokenPath); err != nil {
			return nil, err
		}
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if loopbackOnly && !loopbackPeer(r) {
			http.Error(w, "promote: refused over the network; set PROMOTE_TOKEN to allow it", http.StatusForbidden)
			return
		}
		if r.Header.Get("Origin") != "" {
			http.Error(w, "promote: requests from web pages (with an Origin header) are refused", http.StatusForbidden)
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			http.Error(w, "promote: the request must be JSON (Content-Type: application/json)", http.StatusUnsupportedMediaType)
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			http.Error(w, "promote: missing or wrong token (PROMOTE_TOKEN, or the token file in the data folder)", http.StatusUnauthorized)
			return
		}
		var req PromoteRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, promoteBodyLimit))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			http.Error(w, "promote: the body must be a JSON object like {\"force\": false}", http.StatusBadRequest)
			return
		}
		q := r.URL.Query()
		q.Del("force")
		if req.Force {
			q.Set("force", "true")
		}
		r.URL.RawQuery = q.Encode()
		promote.ServeHTTP(w, r)
	}), nil
}

// loopbackPeer reports whether the request came over loopback.
func loopbackPeer(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// LoopbackAddr reports whether a listen address (host:port) accepts loopback
// connections only. An empty or unspecified host listens on every interface.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// EnsurePromoteToken returns the token in the file at path, creating the file
// with a new random token (mode 0600) when it does not exist.
func EnsurePromoteToken(path string) (string, error) {
	token, err := ReadPromoteToken(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return token, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return "", fmt.Errorf("promote token: %w", err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("promote token: %w", err)
	}
	token = hex.EncodeToString(b[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return ReadPromoteToken(path) // another start made it first
	} else if err != nil {
		return "", fmt.Errorf("promote token: %w", err)
	}
	_, err = f.WriteString(token + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("promote token: %w", err)
	}
	return token, nil
}

// ReadPromoteToken reads the token in the file at path. A file that others
// than its owner may read is refused: the token would not be secret.
func ReadPromoteToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("promote token: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("promote token: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("promote token: %s is readable by others (mode %v); make it 0600", path, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return "", fmt.Errorf("promote token: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if len(token) < 16 {
		return "", fmt.Errorf("promote token: %s is too short; delete it and restart the node to make a new one", path)
	}
	return token, nil
}

// Promote asks the node listening on addr to become the primary, with token,
// and returns its answer.
func Promote(ctx context.Context, addr, token string, force bool) (string, error) {
	body, _ := json.Marshal(PromoteRequest{Force: force})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, PromoteURL(addr), bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("no node answers on %s: %w", addr, unwrapURLError(err))
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	text := strings.TrimSpace(string(msg))
	if resp.StatusCode == http.StatusNotFound {
		return "", fmt.Errorf("the node on %s does not serve promote", addr)
	}
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(text)
	}
	return text, nil
}
