package lease

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
)

// FormatVersion is the version of the lease document this code writes. A reader
// refuses a lease with a higher version rather than guess what it means.
const FormatVersion = 1

// maxRecordSize bounds how much of the lease object is read; a real one is ~300 bytes.
const maxRecordSize = 64 << 10

// Holder identifies one vwstream process. Node is random per process, so a
// restarted process on the same host with a recycled pid is still another holder.
type Holder struct {
	Host string `json:"host"`
	PID  int    `json:"pid"`
	Node string `json:"node"`
}

// NewHolder names this process: host name, pid and a fresh random node id.
func NewHolder() Holder {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return Holder{Host: host, PID: os.Getpid(), Node: hex.EncodeToString(b[:])}
}

// String renders the holder as "host-a (pid 12, node 3f2a01bc)".
func (h Holder) String() string {
	return fmt.Sprintf("%s (pid %d, node %s)", h.Host, h.PID, h.Node)
}

// Info is the lease document stored at layout.Lease.
type Info struct {
	Holder     Holder    `json:"holder"`
	AcquiredAt time.Time `json:"acquired_at"`
	RenewedAt  time.Time `json:"renewed_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	TTL        string    `json:"ttl"`   // the holder's LEASE_TTL, for humans
	Epoch      uint64    `json:"epoch"` // +1 on every change of holder: a fencing token for logs
	Version    int       `json:"version"`
}

// Expired reports whether a reader whose clock reads now may take the lease over.
// Expiry is judged by the reader's clock against the holder's expires_at, so the
// two clocks must agree to within margin (NTP keeps hosts within milliseconds).
func (i Info) Expired(now time.Time, margin time.Duration) bool {
	return now.After(i.ExpiresAt.Add(margin))
}

// Peek returns the current lease, or nil when no lease exists.
func Peek(ctx context.Context, store objstore.Store) (*Info, error) {
	info, _, err := read(ctx, store)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &info, nil
}

// read returns the lease document and the ETag it was read under. It stats
// before it reads: the ETag is then never newer than the body, so a put with
// IfMatch on it succeeds only if the body judged is still the current one.
func read(ctx context.Context, store objstore.Store) (Info, string, error) {
	oi, err := store.Stat(ctx, layout.Lease)
	if err != nil {
		return Info{}, "", fmt.Errorf("read lease: %w", err)
	}
	rc, err := store.Get(ctx, layout.Lease, 0, maxRecordSize)
	if err != nil {
		return Info{}, "", fmt.Errorf("read lease: %w", err)
	}
	defer rc.Close()
	body, err := io.ReadAll(rc)
	if err != nil {
		return Info{}, "", fmt.Errorf("read lease: %w", err)
	}
	info, err := decode(body)
	if err != nil {
		return Info{}, "", err
	}
	return info, oi.ETag, nil
}

// errUnreadable is a lease object that is not a lease this code understands.
var errUnreadable = errors.New("unreadable lease")

func decode(body []byte) (Info, error) {
	var info Info
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&info); err != nil {
		return Info{}, fmt.Errorf("read lease: %w: %v; if no primary is running, delete the object %q", errUnreadable, err, layout.Lease)
	}
	if info.Version > FormatVersion {
		return Info{}, fmt.Errorf("read lease: %w: version %d written by a newer vwstream (this one knows %d)", errUnreadable, info.Version, FormatVersion)
	}
	if info.ExpiresAt.IsZero() || info.Holder.Node == "" {
		return Info{}, fmt.Errorf("read lease: %w: no holder or expiry; if no primary is running, delete the object %q", errUnreadable, layout.Lease)
	}
	return info, nil
}

func encode(info Info) []byte {
	b, _ := json.Marshal(info) // cannot fail: plain fields only
	return append(b, '\n')
}

// HeldError refuses to acquire a lease another process holds.
type HeldError struct {
	Info Info          // the lease as found
	TTL  time.Duration // our LEASE_TTL, named in the message
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("lease held by %s until %s; another primary is running on this prefix, or wait for it to expire (LEASE_TTL=%s)",
		e.Info.Holder, e.Info.ExpiresAt.UTC().Format(time.RFC3339), e.TTL)
}
