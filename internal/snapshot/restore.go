package snapshot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/serverdb"
	"github.com/vwstream/vwstream/internal/vault"
)

// RestoreOptions say which snapshot to restore where.
type RestoreOptions struct {
	Store objstore.Store // the destination holding snapshots/
	Namer *Namer         // BACKUP_FILENAME, to find the newest for "latest"; nil for the default
	Name  string         // archive name (with or without suffix, with or without snapshots/), or "latest"
	To    string         // the data folder to restore into
	Force bool           // replace a non-empty To, keeping it aside until the restore succeeded
	Keys  seal.SnapshotKeys
	// DryRun restores and checks into a temporary folder next to To (or in
	// os.TempDir when To is empty) and removes it: the `verify` drill.
	DryRun bool
	// AllowOpen replaces a database another process has open; without it a
	// restore over one is refused (vault.ErrInUse).
	AllowOpen bool
	// DatabaseURL receives a server database's dump (empty unless Force);
	// nil writes the dump into the restored folder as DumpFileName.
	DatabaseURL *serverdb.URL
	ServerTools serverdb.Tools
	Logger      *slog.Logger
}

// RestoreResult is what a restore found and did.
type RestoreResult struct {
	Name               string           `json:"name"`
	To                 string           `json:"to,omitempty"`
	Files              int              `json:"files"`
	Bytes              int64            `json:"bytes"`
	CapturedAt         time.Time        `json:"captured_at"`
	Integrity          string           `json:"integrity"`
	Tables             map[string]int64 `json:"tables"`
	Degraded           bool             `json:"degraded"`            // as recorded when the snapshot was taken
	MissingAttachments int              `json:"missing_attachments"` // attachment rows without their file in the restored folder
	MissingWhenTaken   int              `json:"missing_when_taken"`  // such rows the manifest recorded when the snapshot was taken
	Changed            []string         `json:"changed,omitempty"`   // large files that shrank during capture, zero-padded
	Duration           time.Duration    `json:"duration_ns"`
	// A server database's snapshot: its dump's facts, and where it went.
	Database   *serverdb.Info `json:"database,omitempty"`
	LoadedInto string         `json:"loaded_into,omitempty"` // the URL, password hidden
	DumpFile   string         `json:"dump_file,omitempty"`   // in To, when not loaded
}

// Restore downloads a snapshot, decrypts, decompresses and unpacks it into a
// staging folder inside To, checks every file against the manifest and the
// database with integrity_check, and only then swaps it in (vault.Staging).
// To is never left half-written: on any error it is untouched, and a crash is
// completed or undone by the next restore or start (vault.Recover). An existing
// non-empty To is replaced only with Force; its node id stays.
func Restore(ctx context.Context, o RestoreOptions) (res *RestoreResult, err error) {
	start := time.Now()
	var swapIn func(keep func(string) bool) error
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Namer == nil {
		if o.Namer, err = NewNamer(DefaultFilename, time.UTC); err != nil {
			return nil, err
		}
	}
	if o.To == "" && !o.DryRun {
		return nil, errors.New("restore: no target folder")
	}
	var to string
	if o.To != "" {
		if to, err = filepath.Abs(o.To); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	var existing []string
	if to != "" && !o.DryRun {
		if err := vault.Recover(to, o.Logger); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		if existing, err = vault.Entries(to); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("restore: %w", err)
		}
		if len(existing) > 0 && !o.Force {
			return nil, fmt.Errorf("restore: %s is not empty; use --force to replace it (it is kept aside until the restore succeeds)", to)
		}
	}
	if o.DatabaseURL != nil && !o.Force {
		// Refuse early, before any download; Load checks again before loading.
		if names, err := serverdb.Empty(ctx, o.DatabaseURL); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		} else if len(names) > 0 {
			return nil, fmt.Errorf("restore: %w: %s holds %d tables; restore into an empty database, or use --force to replace the dumped tables", serverdb.ErrNotEmpty, o.DatabaseURL, len(names))
		}
	}
	name, err := resolve(ctx, o.Store, o.Namer, o.Name)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	res = &RestoreResult{Name: name, To: to}

	// The archive is unpacked into a staging folder inside To (a temporary
	// folder for a drill) and checked there; nothing in To changes before.
	var tmp string
	if o.DryRun {
		if tmp, err = os.MkdirTemp("", ".vwstream-drill-*"); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		defer func() { err = errors.Join(err, os.RemoveAll(tmp)) }()
	} else {
		staging, err := vault.NewStaging(to)
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		defer func() { _ = staging.Remove() }()
		tmp = staging.Path()
		swapIn = staging.SwapIn
	}

	// Download, decrypt, decompress, unpack, checking hashes as it streams.
	rc, err := o.Store.Get(ctx, layout.Snapshots+name, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", name, err)
	}
	defer rc.Close()
	comp, enc := splitExt(name)
	m, err := readSnapshot(rc, comp, enc, o.Keys, extractTo(tmp, expansionLimit(ctx, o.Store, name)))
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", name, oneLine(err))
	}
	res.Files, res.CapturedAt, res.Degraded, res.Changed = len(m.Files), m.CapturedAt, m.Degraded, m.Changed
	res.MissingWhenTaken = len(m.MissingAttachments)
	if len(m.Changed) > 0 {
		o.Logger.Warn("files that changed while the snapshot was taken were restored zero-padded to their listed size", "files", m.Changed)
	}
	for _, f := range m.Files {
		res.Bytes += f.Size
	}

	// Check the database and the attachment references; a server database's
	// dump, checked whole above, is loaded only now.
	switch {
	case m.DB.Server == nil && o.DatabaseURL != nil:
		err = fmt.Errorf("the snapshot holds a SQLite database; a database URL applies to a PostgreSQL or MySQL snapshot")
	case m.DB.Server != nil:
		err = restoreServer(ctx, tmp, m, o, res)
		res.MissingAttachments = len(m.MissingAttachments)
	default:
		err = checkRestored(ctx, tmp, res)
	}
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", name, err)
	}
	o.Logger.Info("snapshot unpacked and checked", "name", name, "files", res.Files, "bytes", res.Bytes, "missing_attachments", res.MissingAttachments)
	if o.DryRun {
		res.Duration = time.Since(start)
		return res, nil
	}
	if len(existing) > 0 && !o.AllowOpen {
		if busy, err := vault.InUse(filepath.Join(to, DBEntry)); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		} else if busy {
			return nil, fmt.Errorf("restore into %s: %w", to, vault.ErrInUse)
		}
	}
	if err := swapIn(nil); err != nil {
		return nil, fmt.Errorf("restore %s: %w", name, err)
	}
	res.Duration = time.Since(start)
	return res, nil
}

// resolve maps a user's snapshot name to an archive name under snapshots/.
func resolve(ctx context.Context, store objstore.Store, namer *Namer, name string) (string, error) {
	name = strings.TrimPrefix(name, layout.Snapshots)
	if name == "" || name == "latest" {
		infos, err := List(ctx, store, namer)
		if err != nil {
			return "", err
		}
		if len(infos) > 0 {
			return infos[0].Name, nil
		}
		// Names made with another BACKUP_FILENAME: fall back to the -latest copy.
		name = LatestBase
	}
	if strings.Contains(name, "/") {
		return "", fmt.Errorf("snapshot name %q: not a name", name)
	}
	var found []string
	for obj, err := range store.List(ctx, layout.Snapshots+name) {
		if err != nil {
			return "", fmt.Errorf("find snapshot %s in %s: %w", name, store, err)
		}
		n := strings.TrimPrefix(obj.Key, layout.Snapshots)
		if strings.HasSuffix(n, SidecarExt) || Ext(n) == "" {
			continue
		}
		if n == name || strings.TrimSuffix(n, Ext(n)) == name {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no snapshot %q in %s", name, store)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("snapshot %q is ambiguous (%s); give the full name", name, strings.Join(found, ", "))
}

// checkRestored runs integrity_check on the restored database and counts the
// attachment rows whose file is missing or has the wrong size.
func checkRestored(ctx context.Context, dir string, res *RestoreResult) error {
	dbPath := filepath.Join(dir, DBEntry)
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("%w: no %s in the snapshot", ErrDamaged, DBEntry)
	}
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro")
	if err != nil {
		return fmt.Errorf("open restored database: %w", err)
	}
	defer db.Close()
	info, err := inspectDB(ctx, db)
	if err != nil {
		return fmt.Errorf("check restored database: %w", err)
	}
	res.Integrity, res.Tables = info.Integrity, info.Tables
	if info.Integrity != "ok" {
		return fmt.Errorf("%w: restored database fails integrity_check: %s", ErrDamaged, info.Integrity)
	}
	if _, ok := info.Tables["attachments"]; !ok {
		return nil
	}
	missing, err := vault.MissingAttachments(dbPath, filepath.Join(dir, "attachments"))
	if err != nil {
		return err
	}
	res.MissingAttachments = len(missing)
	return nil
}

// oneLine flattens multi-line library errors so the command prints one line,
// keeping the chain for errors.Is.
func oneLine(err error) error {
	if !strings.ContainsAny(err.Error(), "\r\n") {
		return err
	}
	return &flatError{err: err}
}

type flatError struct{ err error }

func (e *flatError) Error() string { return strings.Join(strings.Fields(e.err.Error()), " ") }
func (e *flatError) Unwrap() error { return e.err }

// expansionLimit is how many bytes the archive name may unpack to: what its
// sidecar declares plus a margin for the tar headers, or, for an archive
// without that figure (written by an earlier version or another tool), 200
// times its size, at least 1 GiB: far past what a vault compresses to.
func expansionLimit(ctx context.Context, store objstore.Store, name string) int64 {
	const floor = 1 << 30
	info, _ := readSidecar(ctx, store, name)
	if info != nil && info.Expanded > 0 {
		return info.Expanded + max(info.Expanded/100, 16<<20)
	}
	var size int64
	if info != nil {
		size = info.Size
	} else if oi, err := store.Stat(ctx, layout.Snapshots+name); err == nil {
		size = oi.Size
	}
	return max(200*size, floor)
}
