package snapshot

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/vwstream/vwstream/internal/serverdb"
)

// ManifestName is the last entry of every archive.
const ManifestName = "manifest.json"

// ManifestFormat is the version of the manifest layout.
const ManifestFormat = 1

// Manifest describes an archive's content. It is the archive's last entry, so
// the hashes are those of the bytes actually archived, computed as they stream.
type Manifest struct {
	Format     int       `json:"format"`
	Version    string    `json:"vwstream_version"`
	CapturedAt time.Time `json:"captured_at"`
	DB         DBInfo    `json:"db"`
	Files      []File    `json:"files"` // every entry but the manifest, in archive order
	// Degraded is set when attachment rows of the captured database have no
	// complete file in the archive (Vaultwarden writes the row before the file).
	Degraded           bool         `json:"degraded"`
	MissingAttachments []Attachment `json:"missing_attachments,omitempty"`
	// Changed lists files that shrank or vanished while being archived; their
	// entry was padded with zeros to the size announced in its header.
	Changed []string `json:"changed,omitempty"`
}

// DBInfo is what the capture learnt of the database state it archived.
type DBInfo struct {
	Path      string           `json:"path"`      // entry name, db.sqlite3
	Integrity string           `json:"integrity"` // PRAGMA integrity_check: "ok" or the first problems
	Tables    map[string]int64 `json:"tables"`    // row counts of the main tables
	// Server describes a PostgreSQL or MySQL dump (Path is then the dump's
	// name before the part numbers); nil for SQLite.
	Server *serverdb.Info `json:"server,omitempty"`
}

// File is one archive entry.
type File struct {
	Path   string `json:"path"` // slash-separated, relative to the data folder
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex
}

// Attachment is an attachments row without a complete file.
type Attachment struct {
	Path     string `json:"path"`
	WantSize int64  `json:"want_size"`
	GotSize  int64  `json:"got_size"` // -1 when missing
}

func (m *Manifest) marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}

func parseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	if m.Format != ManifestFormat {
		return nil, fmt.Errorf("decode manifest: format %d, want %d", m.Format, ManifestFormat)
	}
	return &m, nil
}

// fileMap indexes the manifest's files by path.
func (m *Manifest) fileMap() map[string]File {
	out := make(map[string]File, len(m.Files))
	for _, f := range m.Files {
		out[f.Path] = f
	}
	return out
}
