// Package vault knows Vaultwarden's data folder the way Vaultwarden writes it:
// facts about it that file sync, snapshots and restores all check against.
package vault

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the driver litestream registers too: one driver per process
)

// MissingAttachment is an attachments row whose file is absent or of another size.
type MissingAttachment struct {
	CipherUUID string `json:"cipher_uuid"`
	ID         string `json:"id"`
	Path       string `json:"path"`
	WantSize   int64  `json:"want_size"` // attachments.file_size
	GotSize    int64  `json:"got_size"`  // -1 when the file is missing
}

// MissingAttachments lists the attachment rows of the database at dbPath whose
// file under attachmentsDir is missing or has the wrong size. Vaultwarden
// inserts the row before it writes the file, so a database and files restored
// together can show one for an upload in progress at the restore point.
func MissingAttachments(dbPath, attachmentsDir string) ([]MissingAttachment, error) {
	if _, err := os.Stat(dbPath); err != nil {
		return nil, fmt.Errorf("check attachments: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, fmt.Errorf("check attachments: %w", err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT cipher_uuid, id, file_size FROM attachments ORDER BY cipher_uuid, id`)
	if err != nil {
		return nil, fmt.Errorf("check attachments: %w", err)
	}
	defer rows.Close()
	var out []MissingAttachment
	for rows.Next() {
		var m MissingAttachment
		if err := rows.Scan(&m.CipherUUID, &m.ID, &m.WantSize); err != nil {
			return nil, fmt.Errorf("check attachments: %w", err)
		}
		m.Path = filepath.Join(attachmentsDir, m.CipherUUID, m.ID)
		fi, err := os.Stat(m.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			m.GotSize = -1
		case err != nil:
			return nil, fmt.Errorf("check attachments: %w", err)
		default:
			m.GotSize = fi.Size()
		}
		if m.GotSize != m.WantSize {
			out = append(out, m)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("check attachments: %w", err)
	}
	return out, nil
}
