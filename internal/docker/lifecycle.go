package docker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The calls below serve a caller that replaces a container by a new one (an
// image updater): read the old one's configuration as the Engine has it,
// pull the new image, create the replacement from the same configuration,
// rename, remove.

// InspectRaw returns a container's full inspection exactly as the Engine sent
// it, so its Config, HostConfig and NetworkSettings can be given back to
// Create without this package modelling every field.
func (c *Client) InspectRaw(ctx context.Context, id string) (json.RawMessage, error) {
	var out json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/containers/"+url.PathEscape(id)+"/json", nil, nil, &out, DefaultTimeout); err != nil {
		return nil, err
	}
	return out, nil
}

// CreateOptions is a container to create, in the Engine's own JSON: Config as
// an inspection's Config (Image, Cmd, Env, Labels ...), HostConfig as its
// HostConfig (mounts, restart policy, ports), NetworkingConfig as
// {"EndpointsConfig": {...}}. Nil parts are left out.
type CreateOptions struct {
	Name             string // "" lets the Engine pick one
	Config           json.RawMessage
	HostConfig       json.RawMessage
	NetworkingConfig json.RawMessage
}

// Create creates a container (not started) and returns its id.
func (c *Client) Create(ctx context.Context, o CreateOptions) (string, error) {
	body := map[string]json.RawMessage{}
	if len(o.Config) > 0 {
		if err := json.Unmarshal(o.Config, &body); err != nil {
			return "", fmt.Errorf("docker create: config: %w", err)
		}
	}
	if len(o.HostConfig) > 0 {
		body["HostConfig"] = o.HostConfig
	}
	if len(o.NetworkingConfig) > 0 {
		body["NetworkingConfig"] = o.NetworkingConfig
	}
	q := url.Values{}
	if o.Name != "" {
		q.Set("name", o.Name)
	}
	var out struct {
		ID string `json:"Id"`
	}
	if err := c.do(ctx, http.MethodPost, "/containers/create", q, body, &out, DefaultTimeout); err != nil {
		return "", err
	}
	return out.ID, nil
}

// Rename gives a container a new name.
func (c *Client) Rename(ctx context.Context, id, name string) error {
	return c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/rename", url.Values{"name": {name}}, nil, nil, DefaultTimeout)
}

// RemoveOptions say how a container is removed.
type RemoveOptions struct {
	Force   bool // kill it first when it runs
	Volumes bool // also its anonymous volumes
}

// Remove deletes a container.
func (c *Client) Remove(ctx context.Context, id string, o RemoveOptions) error {
	q := url.Values{}
	if o.Force {
		q.Set("force", "1")
	}
	if o.Volumes {
		q.Set("v", "1")
	}
	return c.do(ctx, http.MethodDelete, "/containers/"+url.PathEscape(id), q, nil, nil, DefaultTimeout)
}

// Pull fetches an image (name:tag or name@digest) and returns when the Engine
// has it. The Engine reports a failure inside its progress stream; that
// message is the error. The context bounds the whole download.
func (c *Client) Pull(ctx context.Context, ref string) error {
	q := url.Values{"fromImage": {ref}}
	resp, err := c.send(ctx, http.MethodPost, "/images/create", q, nil, 0)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if json.Unmarshal(sc.Bytes(), &msg) != nil {
			continue
		}
		if m := msg.ErrorDetail.Message; m != "" || msg.Error != "" {
			if m == "" {
				m = msg.Error
			}
			return fmt.Errorf("docker pull %s: %s", ref, strings.TrimSpace(m))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("docker pull %s: %w", ref, err)
	}
	return nil
}

// ImageID returns the id (sha256:...) of a local image, ErrNotFound when the
// Engine does not have it.
func (c *Client) ImageID(ctx context.Context, ref string) (string, error) {
	var out struct {
		ID string `json:"Id"`
	}
	if err := c.do(ctx, http.MethodGet, "/images/"+ref+"/json", nil, nil, &out, DefaultTimeout); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", errors.New("docker image inspect: no id in the answer")
	}
	return out.ID, nil
}

// ImageInfo is the part of an image's inspection an updater uses.
type ImageInfo struct {
	ID          string   `json:"Id"`
	RepoTags    []string `json:"RepoTags"`
	RepoDigests []string `json:"RepoDigests"` // repo@sha256:..., one per registry it came from
	Created     string   `json:"Created"`     // RFC 3339, when the image was built
	// Config is the image's own configuration, raw: its defaults (Entrypoint,
	// Cmd, Env, Labels, Healthcheck ...) as a container's Config spells them.
	Config json.RawMessage `json:"Config"`
}

// ImageInspect returns an image's id, digests and default configuration;
// ErrNotFound when the Engine does not have it.
func (c *Client) ImageInspect(ctx context.Context, ref string) (*ImageInfo, error) {
	var out ImageInfo
	if err := c.do(ctx, http.MethodGet, "/images/"+ref+"/json", nil, nil, &out, DefaultTimeout); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveImage deletes an image by id or reference (not forced: an image a
// container still uses stays).
func (c *Client) RemoveImage(ctx context.Context, ref string) error {
	return c.do(ctx, http.MethodDelete, "/images/"+ref, nil, nil, nil, DefaultTimeout)
}

// ConnectNetwork attaches a created container to one more network with
// endpoint (an inspection's EndpointSettings: Aliases, IPAMConfig ...; nil:
// none). Engines before API 1.44 take a single network at create time, so
// the others are connected this way before the container starts.
func (c *Client) ConnectNetwork(ctx context.Context, network, container string, endpoint json.RawMessage) error {
	body := map[string]any{"Container": container}
	if len(endpoint) > 0 {
		body["EndpointConfig"] = endpoint
	}
	return c.do(ctx, http.MethodPost, "/networks/"+url.PathEscape(network)+"/connect", nil, body, nil, DefaultTimeout)
}
