package dbrepl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
)

// ReplicaClientType names the replica client in litestream's logs.
const ReplicaClientType = "vwstream"

// headerFetchConcurrency bounds the ranged header reads made when litestream
// asks for exact timestamps (point-in-time restore only).
const headerFetchConcurrency = 16

var _ litestream.ReplicaClient = (*replicaClient)(nil)

// replicaClient stores litestream's LTX files in an objstore.Store.
//
// objstore has no user metadata, so the exact transaction time that
// litestream's S3 client keeps in object metadata is read back from the LTX
// header itself (a 100-byte ranged Get) when useMetadata is true. LastModified
// is not enough for point-in-time restore: a compacted file's LastModified is
// the compaction time, up to an hour after the transactions it holds, which
// would hide them from restores aimed between the two.
type replicaClient struct {
	store  objstore.Store
	logger *slog.Logger

	// headerTimes caches LTX header timestamps by key and size: objects are
	// immutable, and a point-in-time restore reads each header twice (range
	// check, then plan).
	headerTimes sync.Map

	// listed, when set, answers LTXFiles from one listing of the replica
	// instead of one request per level (a restore's plan asks for ten).
	listed map[int][]*ltx.FileInfo

	// Upload bookkeeping for Replicator.Status.
	progress     atomic.Int64 // unix nanos when upload bytes last moved
	maxL0TXID    atomic.Uint64
	mu           sync.Mutex
	lastUploadAt time.Time
}

func newReplicaClient(store objstore.Store, logger *slog.Logger) *replicaClient {
	if logger == nil {
		logger = slog.Default()
	}
	return &replicaClient{store: store, logger: logger}
}

// ltxKey returns the object key of one LTX file.
func ltxKey(level int, minTXID, maxTXID ltx.TXID) string {
	return levelPrefix(level) + ltx.FormatFilename(minTXID, maxTXID)
}

// levelPrefix returns the key prefix of one compaction level, with a trailing slash.
func levelPrefix(level int) string {
	return layout.DB + fmt.Sprintf("%04x/", level)
}

// Type returns the client type shown in litestream's logs.
func (c *replicaClient) Type() string { return ReplicaClientType }

// Init is a no-op: the store is ready when it is handed over.
func (c *replicaClient) Init(ctx context.Context) error { return nil }

// SetLogger sets the logger for the client.
func (c *replicaClient) SetLogger(logger *slog.Logger) { c.logger = logger }

// LTXFiles lists one level in TXID order. Fixed-width hex filenames make the
// store's lexical order the TXID order litestream expects.
func (c *replicaClient) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	var infos []*ltx.FileInfo
	c.mu.Lock()
	listed := c.listed
	c.mu.Unlock()
	if listed != nil {
		for _, info := range listed[level] {
			if info.MinTXID >= seek {
				cp := *info
				infos = append(infos, &cp)
			}
		}
		if useMetadata {
			if err := c.fillHeaderTimestamps(ctx, infos); err != nil {
				return nil, err
			}
		}
		return ltx.NewFileInfoSliceIterator(infos), nil
	}
	for oi, err := range c.store.List(ctx, levelPrefix(level)) {
		if err != nil {
			return nil, fmt.Errorf("list level %d: %w", level, err)
		}
		minTXID, maxTXID, err := ltx.ParseFilename(path.Base(oi.Key))
		if err != nil || path.Dir(oi.Key)+"/" != levelPrefix(level) {
			continue // not an LTX file of this level
		}
		if minTXID < seek {
			continue
		}
		infos = append(infos, &ltx.FileInfo{
			Level:     level,
			MinTXID:   minTXID,
			MaxTXID:   maxTXID,
			Size:      oi.Size,
			CreatedAt: oi.ModTime.UTC(),
		})
	}
	if useMetadata {
		if err := c.fillHeaderTimestamps(ctx, infos); err != nil {
			return nil, err
		}
	}
	return ltx.NewFileInfoSliceIterator(infos), nil
}

// useListing makes LTXFiles answer from levels (listReplica) until
// forgetListing: a restore plans from the one listing it started with.
func (c *replicaClient) useListing(levels map[int][]*ltx.FileInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listed = levels
}

// forgetListing makes LTXFiles list the store again.
func (c *replicaClient) forgetListing() { c.useListing(nil) }

// fillHeaderTimestamps replaces each CreatedAt with the timestamp in the LTX
// header. A file whose header cannot be read keeps its LastModified, as
// litestream's S3 client does when metadata is missing; such a file is
// reported as corrupt by the restore that reads it.
func (c *replicaClient) fillHeaderTimestamps(ctx context.Context, infos []*ltx.FileInfo) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(headerFetchConcurrency)
	for _, info := range infos {
		cacheKey := fmt.Sprintf("%s@%d", ltxKey(info.Level, info.MinTXID, info.MaxTXID), info.Size)
		if t, ok := c.headerTimes.Load(cacheKey); ok {
			info.CreatedAt = t.(time.Time)
			continue
		}
		g.Go(func() error {
			hdr, err := c.readHeader(gctx, info.Level, info.MinTXID, info.MaxTXID)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				c.logger.Debug("ltx header unreadable, using modification time",
					"key", ltxKey(info.Level, info.MinTXID, info.MaxTXID), "error", err)
				return nil
			}
			info.CreatedAt = time.UnixMilli(hdr.Timestamp).UTC()
			c.headerTimes.Store(cacheKey, info.CreatedAt)
			return nil
		})
	}
	return g.Wait()
}

// readHeader reads and decodes the LTX header of one file.
func (c *replicaClient) readHeader(ctx context.Context, level int, minTXID, maxTXID ltx.TXID) (ltx.Header, error) {
	rc, err := c.store.Get(ctx, ltxKey(level, minTXID, maxTXID), 0, ltx.HeaderSize)
	if err != nil {
		return ltx.Header{}, err
	}
	defer func() { _ = rc.Close() }()
	hdr, _, err := ltx.PeekHeader(rc)
	if err != nil {
		return ltx.Header{}, fmt.Errorf("read ltx header: %w", err)
	}
	return hdr, nil
}

// OpenLTXFile opens one LTX file from offset; size <= 0 reads to the end.
// A missing object is reported as os.ErrNotExist, which litestream's restore
// uses to recompute its plan after a concurrent compaction.
func (c *replicaClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	key := ltxKey(level, minTXID, maxTXID)
	length := int64(-1)
	if size > 0 {
		length = size
	}
	rc, err := c.store.Get(ctx, key, offset, length)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, &fs.PathError{Op: "open", Path: key, Err: os.ErrNotExist}
	} else if err != nil {
		return nil, fmt.Errorf("open ltx file %s: %w", key, err)
	}
	return rc, nil
}

// WriteLTXFile uploads one LTX file. CreatedAt is the header timestamp, the
// moment litestream read the transactions from the WAL, like litestream's own
// clients report it.
func (c *replicaClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (info *ltx.FileInfo, err error) {
	defer func() {
		if err == nil {
			c.recordUpload(level, maxTXID)
		}
	}()

	var head bytes.Buffer
	hdr, _, err := ltx.PeekHeader(io.TeeReader(r, &head))
	if err != nil {
		return nil, fmt.Errorf("read ltx header: %w", err)
	}
	cr := &countingReader{r: io.MultiReader(&head, r), progress: &c.progress}
	key := ltxKey(level, minTXID, maxTXID)
	if _, err := c.store.Put(ctx, key, cr, objstore.PutOptions{ContentType: "application/octet-stream"}); err != nil {
		return nil, fmt.Errorf("put %s: %w", key, err)
	}
	return &ltx.FileInfo{
		Level:     level,
		MinTXID:   minTXID,
		MaxTXID:   maxTXID,
		Size:      cr.n,
		CreatedAt: time.UnixMilli(hdr.Timestamp).UTC(),
	}, nil
}

// recordUpload keeps what Replicator.Status reports about uploads.
func (c *replicaClient) recordUpload(level int, maxTXID ltx.TXID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastUploadAt = time.Now()
	if level == 0 {
		for {
			cur := c.maxL0TXID.Load()
			if uint64(maxTXID) <= cur || c.maxL0TXID.CompareAndSwap(cur, uint64(maxTXID)) {
				break
			}
		}
	}
}

// DeleteLTXFiles removes LTX files in one store call.
func (c *replicaClient) DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error {
	if len(a) == 0 {
		return nil
	}
	keys := make([]string, 0, len(a))
	for _, info := range a {
		keys = append(keys, ltxKey(info.Level, info.MinTXID, info.MaxTXID))
	}
	if err := c.store.Delete(ctx, keys...); err != nil {
		return fmt.Errorf("delete ltx files: %w", err)
	}
	return nil
}

// DeleteAll removes every object of the replica.
func (c *replicaClient) DeleteAll(ctx context.Context) error {
	var keys []string
	for oi, err := range c.store.List(ctx, layout.DB) {
		if err != nil {
			return fmt.Errorf("list replica: %w", err)
		}
		keys = append(keys, oi.Key)
	}
	if len(keys) == 0 {
		return nil
	}
	if err := c.store.Delete(ctx, keys...); err != nil {
		return fmt.Errorf("delete replica: %w", err)
	}
	return nil
}

// countingReader counts the bytes read through it: the plaintext size of an
// upload, whatever the store does to the bytes afterwards.
type countingReader struct {
	r        io.Reader
	n        int64
	progress *atomic.Int64 // unix nanos of the last read, for stall detection
}

func (cr *countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.n += int64(n)
	if n > 0 && cr.progress != nil {
		cr.progress.Store(time.Now().UnixNano())
	}
	return n, err
}
