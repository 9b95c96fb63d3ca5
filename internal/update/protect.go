package update

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vwstream/vwstream/internal/docker"
)

// LabelProtected marks a container whose data vwstream protects (Vaultwarden
// beside a `vwstream run` sidecar, on the same data folder). Its update runs
// between a restore point and, when it is rolled back, the data put back. A
// container that mounts the data folder (Options.DataMounts) is protected
// without it; the label is for what the Engine cannot show, such as a volume
// of a network file system mounted under two names.
const LabelProtected = "vwstream.protected"

// Protector keeps a protected container's data safe across its update. The
// node that replicates the data folder implements it; without one (a pass
// from the command line while the node runs elsewhere) a protected container
// is not updated.
type Protector interface {
	// Snapshot takes a snapshot of the data folder while the old container
	// still serves, and returns its name: the restore point a person can
	// always go back to, in the snapshot destinations.
	Snapshot(ctx context.Context) (string, error)
	// Mark runs once the old container has stopped: replication and file
	// sync are flushed, and the point records the transaction every write
	// of the old version is in.
	Mark(ctx context.Context) (RestorePoint, error)
	// PutBack runs after a failed replacement was removed, before the old
	// container starts again. When the database moved past the point (the
	// new version migrated it), the new version's writes are flushed to the
	// replica, where they stay restorable, and the database is put back to
	// the point and replicated on from there as the replica's new head. It
	// says what it did in one line.
	PutBack(ctx context.Context, p RestorePoint) (string, error)
}

// RestorePoint is where a protected container's data stood when its update
// began.
type RestorePoint struct {
	Snapshot string    `json:"snapshot,omitempty"` // taken before the old container stopped
	TXID     uint64    `json:"txid"`               // the database's last transaction once it had stopped
	Time     time.Time `json:"time"`
}

func (p RestorePoint) String() string {
	s := fmt.Sprintf("transaction %d", p.TXID)
	if p.Snapshot != "" {
		s += ", snapshot " + p.Snapshot
	}
	return s
}

// protected reports whether a container needs a restore point: labelled so,
// or mounting what holds the protected data folder (Options.DataMounts).
func (o Options) protected(cur *current) bool {
	if strings.EqualFold(cur.labels[LabelProtected], "true") {
		return true
	}
	for _, m := range cur.mounts {
		for _, d := range o.DataMounts {
			switch {
			case m.Type == "volume" && m.Name == d:
				return true
			case m.Type == "bind" && (within(m.Source, d) || within(d, m.Source)):
				return true
			}
		}
	}
	return false
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	if path == "" || dir == "" || !strings.HasPrefix(dir, "/") {
		return false
	}
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

// DataMounts lists what holds dataFolder as a container would mount it: the
// folder itself (vwstream on the host), and, when self names vwstream's own
// container, the volume or host path its mount of dataFolder comes from.
func DataMounts(self *docker.ContainerInfo, dataFolder string) []string {
	out := []string{dataFolder}
	if self == nil {
		return out
	}
	for _, m := range self.Mounts {
		if !within(dataFolder, m.Destination) {
			continue
		}
		switch m.Type {
		case "volume":
			out = append(out, m.Name)
		case "bind":
			out = append(out, m.Source)
		}
	}
	return out
}

// Memory is what passes of one process remember: the digests whose update
// was rolled back, so a broken release is not tried again (and the service
// not stopped again) on every pass until its tag moves on.
type Memory struct {
	mu     sync.Mutex
	failed map[string]string // container name -> digest rolled back
}

func (m *Memory) rolledBack(container, digest string) bool {
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failed[container] == digest
}

func (m *Memory) remember(container, digest string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failed == nil {
		m.failed = map[string]string{}
	}
	m.failed[container] = digest
}
