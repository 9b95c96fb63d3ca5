// Package preflight answers "can this node do its job?" before it starts: the data
// folder, the database file, a write/read/conditional-write/delete probe of the
// target and the keys.
// `vwstream check` prints its checklist; `vwstream run` will refuse to start on it.
package preflight

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/vwstream/vwstream/internal/bucket"
	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/docker"
	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/seal"
	"github.com/vwstream/vwstream/internal/serverdb"
)

// Item is one line of the checklist.
type Item struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Report is the whole checklist.
type Report struct {
	OK    bool   `json:"ok"`
	Items []Item `json:"checks"`
}

// ProbePrefix is where the target probe writes its short-lived object.
const ProbePrefix = ".vwstream-check/"

// Run checks everything it can, in order, and never stops at the first failure:
// a user fixing one problem should see the others at once.
func Run(ctx context.Context, cfg *config.Config, store objstore.Store) Report {
	var r Report
	add := func(it Item) { r.Items = append(r.Items, it) }

	add(Item{Name: "configuration", OK: true, Detail: fmt.Sprintf("target %s, role %s, mode %s", store, cfg.Role, cfg.Mode)})
	add(DataFolder(cfg.DataFolder))
	if cfg.Server != nil {
		add(ServerDatabase(ctx, cfg.Server, serverdb.Tools{}))
	} else {
		add(Database(cfg.DBPath))
	}
	probe := Probe(ctx, store)
	add(probe)
	add(Encryption(ctx, cfg, store, probe.OK))
	if cfg.Containers.Enabled {
		add(Engine(ctx, cfg.Containers.DockerHost))
	}

	r.OK = true
	for _, it := range r.Items {
		r.OK = r.OK && it.OK
	}
	return r
}

// DataFolder checks that dir is a readable directory.
func DataFolder(dir string) Item {
	it := Item{Name: "data folder"}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		it.Detail = fmt.Sprintf("%s does not exist (DATA_FOLDER)", dir)
		return it
	case err != nil:
		it.Detail = fmt.Sprintf("%s: %v", dir, err)
		return it
	case !st.IsDir():
		it.Detail = fmt.Sprintf("%s is not a directory (DATA_FOLDER)", dir)
		return it
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		it.Detail = fmt.Sprintf("%s is not readable: %v", dir, err)
		return it
	}
	it.OK = true
	it.Detail = fmt.Sprintf("%s, readable, %d entries", dir, len(entries))
	return it
}

// sqliteMagic opens every SQLite 3 database file.
var sqliteMagic = []byte("SQLite format 3\x00")

// Database checks that path is an SQLite database in WAL mode, or absent. It reads
// the file header only, so it takes no lock a running Vaultwarden could notice.
func Database(path string) Item {
	it := Item{Name: "database"}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		it.OK = true
		it.Detail = fmt.Sprintf("%s is absent: run restores it from the replica, or waits for Vaultwarden to create it", path)
		return it
	}
	if err != nil {
		it.Detail = fmt.Sprintf("%s: %v", path, err)
		return it
	}
	defer f.Close()
	var hdr [100]byte
	n, err := io.ReadFull(f, hdr[:])
	if n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
		it.OK = true
		it.Detail = fmt.Sprintf("%s is empty: Vaultwarden has not initialised it yet", path)
		return it
	}
	if err != nil || !bytes.Equal(hdr[:16], sqliteMagic) {
		it.Detail = fmt.Sprintf("%s is not an SQLite database", path)
		return it
	}
	// Bytes 18 and 19 are the write and read format versions: 2 means WAL.
	if hdr[18] != 2 || hdr[19] != 2 {
		it.Detail = fmt.Sprintf("%s is not in WAL mode (set ENABLE_DB_WAL=true in Vaultwarden)", path)
		return it
	}
	it.OK = true
	it.Detail = fmt.Sprintf("%s: SQLite, WAL mode", path)
	return it
}

// ServerDatabase connects to a PostgreSQL or MySQL/MariaDB server, reports
// its version, and checks that the dump tool on PATH (tools, when set) can
// dump it: a pg_dump older than the server refuses to, and a MySQL tool
// against MariaDB (or the reverse) writes dumps the other does not load.
func ServerDatabase(ctx context.Context, u *serverdb.URL, tools serverdb.Tools) Item {
	it := Item{Name: "database"}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	db, err := serverdb.Open(ctx, u)
	if err != nil {
		it.Detail = err.Error()
		return it
	}
	defer db.Close()
	srv, err := serverdb.ServerInfo(ctx, db, u.Kind)
	if err != nil {
		it.Detail = u.Scrub(err.Error())
		return it
	}
	tc, err := serverdb.CheckTool(ctx, tools, srv)
	if err != nil {
		it.Detail = fmt.Sprintf("%s %s at %s: %s", u.Kind, srv.Version, u.Addr(), tc.Problem)
		return it
	}
	it.OK = true
	it.Detail = fmt.Sprintf("%s %s at %s (database %s); %s can dump it; snapshots only (no continuous replication)", u.Kind, srv.Version, u.Addr(), u.Database, tc.Version)
	return it
}

// Probe writes, reads back and deletes a small random object on the target, and
// checks that the target honours the conditional writes the lease relies on.
func Probe(ctx context.Context, store objstore.Store) Item {
	it := Item{Name: "target"}
	start := time.Now()
	var b [16]byte
	_, _ = rand.Read(b[:])
	key := ProbePrefix + hex.EncodeToString(b[:])
	body := make([]byte, 1024)
	_, _ = rand.Read(body)
	if _, err := store.Put(ctx, key, bytes.NewReader(body), objstore.PutOptions{IfNoneMatch: true}); err != nil {
		it.Detail = fmt.Sprintf("write probe: %v", err)
		return it
	}
	err := readBack(ctx, store, key, body)
	if err == nil {
		err = conditionalWrites(ctx, store, key, body)
	}
	if derr := store.Delete(ctx, key); err == nil && derr != nil {
		err = fmt.Errorf("delete probe: %w", derr)
	}
	if err != nil {
		it.Detail = err.Error()
		return it
	}
	it.OK = true
	it.Detail = fmt.Sprintf("%s: write, read, conditional writes and delete in %s", store, time.Since(start).Round(time.Millisecond))
	return it
}

// conditionalWrites checks that the store refuses to create key over the
// existing object (If-None-Match) and to replace it under a stale ETag
// (If-Match): the lease is taken and renewed with exactly these, and a store
// that ignores them would let two primaries write one replica.
func conditionalWrites(ctx context.Context, store objstore.Store, key string, body []byte) error {
	const stale = "0123456789abcdef0123456789abcdef"
	for _, c := range []struct {
		opts objstore.PutOptions
		name string
	}{
		{objstore.PutOptions{IfNoneMatch: true}, "If-None-Match"},
		{objstore.PutOptions{IfMatch: stale}, "If-Match"},
	} {
		_, err := store.Put(ctx, key, bytes.NewReader(body), c.opts)
		if err == nil {
			return fmt.Errorf("conditional write probe: the target ignored %s and overwrote the object: "+
				"the lease cannot keep a second primary out on this store", c.name)
		}
		if !errors.Is(err, objstore.ErrPrecondition) {
			return fmt.Errorf("conditional write probe (%s): %w", c.name, err)
		}
	}
	return nil
}

func readBack(ctx context.Context, store objstore.Store, key string, want []byte) error {
	rc, err := store.Get(ctx, key, 0, -1)
	if err != nil {
		return fmt.Errorf("read probe: %w", err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read probe: %w", err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("read probe: the object read back differs from the one written")
	}
	return nil
}

// Encryption says how data leaving the host is protected and checks that the
// passphrase opens the bucket key when one exists. The caller has already run
// cfg.RequireEncryption, which refuses a remote target in the clear.
func Encryption(ctx context.Context, cfg *config.Config, store objstore.Store, reachable bool) Item {
	it := Item{Name: "encryption"}
	snap := "snapshots unencrypted"
	if cfg.Encryption.SnapshotMode != seal.SnapshotPlain {
		snap = "snapshots " + string(cfg.Encryption.SnapshotMode)
	}
	if cfg.Encryption.Key != "" {
		if !reachable {
			it.Detail = "ENCRYPTION_KEY not checked: the target is unreachable"
			return it
		}
		key, err := bucket.Key(ctx, store, cfg, bucket.ReadKey)
		if err != nil {
			it.Detail = err.Error()
			return it
		}
		it.OK = true
		it.Detail = fmt.Sprintf("ENCRYPTION_KEY is the bucket key (%s); %s", key.Recipient(), snap)
		return it
	}
	if cfg.Encryption.Passphrase == "" {
		it.OK = true
		where := "local folder"
		if cfg.Remote() {
			where = "ALLOW_UNENCRYPTED=true"
		}
		it.Detail = fmt.Sprintf("replica and files NOT encrypted (%s); %s", where, snap)
		return it
	}
	if !reachable {
		it.Detail = "bucket key not checked: the target is unreachable"
		return it
	}
	// The read-only form of the key policy that run, restore and the
	// secondary use: a missing key is fine only while nothing sealed exists,
	// which is when the first primary run creates one.
	_, err := bucket.Key(ctx, store, cfg, bucket.ReadKey)
	switch {
	case errors.Is(err, seal.ErrNoKey):
		prefix, lerr := layout.HoldsSealedData(ctx, store)
		if lerr != nil {
			it.Detail = lerr.Error()
			return it
		}
		if prefix != "" {
			it.Detail = fmt.Sprintf("%v, but %s holds sealed objects: a new key could not open them", err, prefix)
			return it
		}
		it.OK = true
		it.Detail = fmt.Sprintf("no bucket key yet: the first run creates %s, sealed with %s; %s", layout.KeyPath, cfg.Encryption.PassphraseSource, snap)
	case err != nil:
		it.Detail = err.Error()
	default:
		it.OK = true
		it.Detail = fmt.Sprintf("%s opens the bucket key %s; %s", cfg.Encryption.PassphraseSource, layout.KeyPath, snap)
	}
	return it
}

// Engine checks the Docker Engine the container operations use: the socket
// answers, the API version is agreed, containers can be listed.
func Engine(ctx context.Context, host string) Item {
	it := Item{Name: "docker engine"}
	c, err := docker.New(ctx, host)
	if err != nil {
		it.Detail = err.Error() + " (needed by BACKUP_STOP_DURING_BACKUP_LABEL / EXEC_LABEL)"
		return it
	}
	defer c.Close()
	running, err := c.List(ctx, docker.ListOptions{})
	if err != nil {
		it.Detail = err.Error()
		return it
	}
	e := c.Engine()
	it.OK = true
	it.Detail = fmt.Sprintf("%s reachable, Engine %s (API %s, speaking %s), %d running containers", c.Host(), e.Version, e.APIVersion, c.APIVersion(), len(running))
	return it
}
