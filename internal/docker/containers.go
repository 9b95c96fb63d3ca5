package docker

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Container is one entry of a container listing.
type Container struct {
	ID     string            `json:"Id"`
	Names  []string          `json:"Names"` // with the Engine's leading slash
	Image  string            `json:"Image"`
	State  string            `json:"State"` // running, exited, paused, created ...
	Labels map[string]string `json:"Labels"`
}

// Name is the container's first name without the leading slash, or its short id.
func (c Container) Name() string {
	if len(c.Names) > 0 {
		return strings.TrimPrefix(c.Names[0], "/")
	}
	return shortID(c.ID)
}

// ContainerInfo is the part of a container's inspection vwstream uses.
type ContainerInfo struct {
	ID     string          `json:"Id"`
	Name   string          `json:"Name"` // with the Engine's leading slash
	State  ContainerState  `json:"State"`
	Config ContainerConfig `json:"Config"`
	Mounts []Mount         `json:"Mounts"`
}

// Mount is one of a container's mounts as the Engine reports it.
type Mount struct {
	Type        string `json:"Type"`        // bind, volume, tmpfs ...
	Name        string `json:"Name"`        // the volume's name
	Source      string `json:"Source"`      // the path on the Engine's host
	Destination string `json:"Destination"` // the path in the container
}

// ContainerState is a container's run state.
type ContainerState struct {
	Status     string    `json:"Status"` // running, exited ...
	Running    bool      `json:"Running"`
	ExitCode   int       `json:"ExitCode"`
	StartedAt  time.Time `json:"StartedAt"`
	FinishedAt time.Time `json:"FinishedAt"`
	Health     *struct {
		Status string `json:"Status"` // starting, healthy, unhealthy
	} `json:"Health,omitempty"`
}

// ContainerConfig is the part of a container's configuration vwstream uses.
type ContainerConfig struct {
	Image       string            `json:"Image"`
	User        string            `json:"User"`
	Labels      map[string]string `json:"Labels"`
	StopTimeout *int              `json:"StopTimeout,omitempty"` // seconds; nil: the Engine's default (10 s)
}

// ListOptions select containers.
type ListOptions struct {
	All    bool     // also stopped containers
	Labels []string // "key" or "key=value", all must match
}

// List returns the containers matching o.
func (c *Client) List(ctx context.Context, o ListOptions) ([]Container, error) {
	q := url.Values{}
	if o.All {
		q.Set("all", "1")
	}
	if len(o.Labels) > 0 {
		f, err := json.Marshal(map[string][]string{"label": o.Labels})
		if err != nil {
			return nil, err
		}
		q.Set("filters", string(f))
	}
	var out []Container
	if err := c.do(ctx, http.MethodGet, "/containers/json", q, nil, &out, DefaultTimeout); err != nil {
		return nil, err
	}
	return out, nil
}

// Inspect returns a container's state and configuration.
func (c *Client) Inspect(ctx context.Context, id string) (*ContainerInfo, error) {
	var out ContainerInfo
	if err := c.do(ctx, http.MethodGet, "/containers/"+url.PathEscape(id)+"/json", nil, nil, &out, DefaultTimeout); err != nil {
		return nil, err
	}
	return &out, nil
}

// Stop stops a container: SIGTERM (or its stop signal), then SIGKILL after
// timeout; timeout 0 uses the container's own stop timeout (Compose's
// stop_grace_period, else the Engine's 10 s). A container already stopped is
// not an error.
func (c *Client) Stop(ctx context.Context, id string, timeout time.Duration) error {
	q := url.Values{}
	if timeout > 0 {
		q.Set("t", strconv.Itoa(int((timeout+time.Second-1)/time.Second)))
	}
	return c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/stop", q, nil, nil, 0)
}

// Start starts a stopped container. A container already running is not an error.
func (c *Client) Start(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/start", nil, nil, nil, DefaultTimeout)
}

// ExecOptions is one command to run inside a container.
type ExecOptions struct {
	Cmd        []string // argv; no shell unless the command names one
	User       string   // "" is the container's user
	Env        []string // extra NAME=value entries
	WorkingDir string   // "" is the container's
}

// Exec runs o.Cmd inside the running container id, copying its standard
// output and error to stdout and stderr as they arrive (either may be nil),
// and returns its exit code once it ends. The error is for the API only: a
// command that ran and failed returns its non-zero code and a nil error.
func (c *Client) Exec(ctx context.Context, id string, o ExecOptions, stdout, stderr io.Writer) (int, error) {
	if len(o.Cmd) == 0 {
		return -1, errors.New("docker exec: empty command")
	}
	create := map[string]any{"AttachStdout": true, "AttachStderr": true, "Tty": false,
		"Cmd": o.Cmd, "User": o.User, "Env": o.Env, "WorkingDir": o.WorkingDir}
	var created struct {
		ID string `json:"Id"`
	}
	if err := c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/exec", nil, create, &created, DefaultTimeout); err != nil {
		return -1, err
	}
	// Without an Upgrade header the Engine answers 200 and streams the
	// multiplexed output on the same connection until the command ends.
	resp, err := c.send(ctx, http.MethodPost, "/exec/"+created.ID+"/start", nil, map[string]bool{"Detach": false, "Tty": false}, 0)
	if err != nil {
		return -1, err
	}
	err = demux(resp.Body, stdout, stderr)
	resp.Body.Close()
	if err != nil {
		return -1, fmt.Errorf("docker exec %s: read output: %w", shortID(id), err)
	}
	var state struct {
		Running  bool `json:"Running"`
		ExitCode int  `json:"ExitCode"`
	}
	if err := c.do(ctx, http.MethodGet, "/exec/"+created.ID+"/json", nil, nil, &state, DefaultTimeout); err != nil {
		return -1, err
	}
	if state.Running {
		return -1, fmt.Errorf("docker exec %s: output ended while the command still runs", shortID(id))
	}
	return state.ExitCode, nil
}

// demux splits the Engine's multiplexed stream: frames of an 8-byte header
// (stream 1 stdout, 2 stderr; big-endian length in bytes 4-7) and the payload.
func demux(r io.Reader, stdout, stderr io.Writer) error {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		var w io.Writer
		switch hdr[0] {
		case 1:
			w = stdout
		case 2:
			w = stderr
		}
		if w == nil {
			w = io.Discard
		}
		if _, err := io.CopyN(w, r, int64(binary.BigEndian.Uint32(hdr[4:]))); err != nil {
			return err
		}
	}
}

// shortID is the 12-character form of a container id used in messages.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
