package testenv

import (
	"bytes"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// standInDockerfile is the Vaultwarden stand-in as an image FROM scratch:
// vwload serving /data on 127.0.0.1:8080 and writing 20 transactions a
// second, box for the healthcheck, an empty /tmp.
const standInDockerfile = `FROM scratch
COPY vwload /vwload
COPY box /box
COPY tmp/ /tmp/
LABEL org.opencontainers.image.version=%V
HEALTHCHECK --interval=1s --timeout=5s --retries=1 CMD %H
ENTRYPOINT ["/vwload", "serve", "--dir", "/data", "--addr", "127.0.0.1:8080", "--write-rate", "20"]
CMD %C
`

// Healthchecks of StandIn images.
const (
	StandInHealthy = `["/box", "get", "http://127.0.0.1:8080/alive"]`
	StandInBroken  = `["/box", "exit", "1"]`
)

// StandIn builds the Vaultwarden stand-in's static programs once and makes
// images of it in versions.
type StandIn struct {
	t     testing.TB
	files map[string]string
	label string
}

// NewStandIn builds vwload and box with CGO_ENABLED=0. Every image it makes
// carries the label vwstream.test=label, so a test's images are told apart.
func NewStandIn(t testing.TB, label string) *StandIn {
	bins := t.TempDir()
	return &StandIn{t: t, label: label, files: map[string]string{
		"vwload": StaticBinary(t, "github.com/vwstream/vwstream/cmd/vwload", bins),
		"box":    StaticBinary(t, "github.com/vwstream/vwstream/internal/docker/testdata/box", bins),
		"tmp/":   "",
	}}
}

// Image builds tag: version is its org.opencontainers.image.version label,
// health its HEALTHCHECK command (StandInHealthy, StandInBroken), cmd the
// JSON array of vwload serve's extra arguments. It returns the image id; the
// image is removed when the test ends.
func (s *StandIn) Image(tag, version, health, cmd string) string {
	df := strings.NewReplacer("%V", version, "%H", health, "%C", cmd).Replace(standInDockerfile) + "LABEL vwstream.test=" + s.label + "\n"
	BuildImage(s.t, tag, df, s.files)
	id := DockerRun(s.t, "image", "inspect", "--format", "{{.Id}}", tag)
	// By id: the image also goes under the names a push and a pull gave it.
	s.t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", id).Run() })
	return id
}

// SyncBuffer is a bytes.Buffer a process and a test may use at once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
