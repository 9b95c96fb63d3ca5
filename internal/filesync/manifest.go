package filesync

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/vwstream/vwstream/internal/vault"
)

// ManifestName is the manifest's file name inside the state folder.
const ManifestName = "filesync.json"

const manifestVersion = 1

// entry is what the manifest knows about one uploaded file.
type entry struct {
	Size  int64  `json:"size"`
	MTime int64  `json:"mtime"` // unix nanoseconds
	Hash  string `json:"sha256"`
	ETag  string `json:"etag"` // of the stored object (sealed bytes when sealed)
}

// manifest is the local record that lets a reconcile with no changes cost one
// listing: every file it lists is known to be in the store with that content.
type manifest struct {
	Version   int                  `json:"version"`
	Files     map[string]entry     `json:"files"`   // by object key
	Missing   map[string]time.Time `json:"missing"` // key -> first seen missing locally
	LastPurge time.Time            `json:"last_purge"`
}

func newManifest() *manifest {
	return &manifest{Version: manifestVersion, Files: map[string]entry{}, Missing: map[string]time.Time{}}
}

// loadManifest reads the manifest at path. A missing file is an empty manifest;
// so is an unreadable one (with the error returned for logging): the next full
// reconcile rebuilds it by uploading again, which is safe, never by deleting.
func loadManifest(path string) (*manifest, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return newManifest(), nil
	}
	if err != nil {
		return newManifest(), fmt.Errorf("read manifest: %w", err)
	}
	m := newManifest()
	if err := json.Unmarshal(data, m); err != nil || m.Version != manifestVersion {
		return newManifest(), fmt.Errorf("manifest %s is damaged or of another version, starting afresh: %v", path, err)
	}
	if m.Files == nil {
		m.Files = map[string]entry{}
	}
	if m.Missing == nil {
		m.Missing = map[string]time.Time{}
	}
	return m, nil
}

// save writes the manifest atomically: a temp file, fsync, rename, fsync of the
// folder, so a crash leaves the old or the new manifest, never a torn one.
func (m *manifest) save(path string) error {
	data, err := m.encode()
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data)
}

func (m *manifest) encode() ([]byte, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return data, nil
}

func writeFileAtomic(path string, data []byte) error {
	if err := vault.WriteFileAtomic(path, data, 0o600); err != nil {
		return fmt.Errorf("save manifest: %w", err)
	}
	return nil
}
