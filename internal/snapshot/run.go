package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
)

// Run takes one snapshot and sends it to every destination. The steps run in
// this order: capture (the database's state fixed and checked, file list) -> archive -> compress ->
// encrypt -> upload to the first destination (those four streamed through one
// pipe, no temporary archive) -> verify -> copy to the extra destinations from
// the verified first copy -> sidecar and -latest copy -> prune -> notify.
// Retention runs only at destinations whose copy was verified. The error names
// every destination that failed; the Result is always returned.
func Run(ctx context.Context, o Options, dests []Destination) (res *Result, err error) {
	res = &Result{}
	o, err = o.withDefaults()
	if err != nil {
		return res, fmt.Errorf("snapshot: %w", err)
	}
	start := o.Now()
	res.Time = start
	var cleanups []func() error
	var resumeErr error                    // a container not restarted: the run fails with it
	var finish func(context.Context) error // the post commands of the container operations
	defer func() {
		err = errors.Join(err, resumeErr)
		if finish != nil {
			if ferr := finish(context.WithoutCancel(ctx)); ferr != nil {
				err = errors.Join(err, fmt.Errorf("after snapshot: %w", ferr))
			}
		}
		for i := len(cleanups) - 1; i >= 0; i-- {
			if cerr := cleanups[i](); cerr != nil {
				err = errors.Join(err, fmt.Errorf("snapshot cleanup: %w", cerr))
			}
		}
		res.Duration = o.Now().Sub(start)
		if err != nil {
			res.Error = err.Error()
			o.Logger.Error("snapshot failed", "name", res.Name, "error", err)
		} else {
			o.Logger.Info("snapshot done", "name", res.Name, "size", res.Size, "duration", res.Duration.Round(1e6), "degraded", res.Degraded)
		}
		o.notifyRun(context.WithoutCancel(ctx), res)
	}()
	if len(dests) == 0 {
		return res, errors.New("snapshot: no destination")
	}
	for _, d := range dests {
		res.Destinations = append(res.Destinations, DestResult{Name: d.Name, Store: d.Store.String()})
	}
	ext, err := compressExt(o.Compression)
	if err != nil {
		return res, fmt.Errorf("snapshot: %w", err)
	}
	res.Name = o.Namer.Base(start) + ext + o.Encrypter.Ext()
	key := layout.Snapshots + res.Name
	log := o.Logger.With("name", res.Name)

	// 1. Capture, inside o.Quiesce and its Resume when set (containers
	// stopped, their data spooled, restarted before step 2).
	c, finish, resumeErr, err := o.captureQuiesced(ctx, res)
	if err != nil {
		return res, fmt.Errorf("snapshot: %w", err)
	}
	cleanups = append(cleanups, c.cleanup)
	res.DBCopyBytes = c.dbSize
	var dbBytes int64
	if c.stream != nil {
		// A failed upload streams the archive again into the fallback
		// folder: the read transaction stays until the upload is decided.
		c.stream.keep = o.Fallback != nil
		dbBytes = c.stream.size()
	}
	log.Info("snapshot captured", "db_streamed_bytes", dbBytes, "db_copy_bytes", c.dbSize, "files", len(c.files), "attachment_rows", len(c.rows), "containers_stopped", len(res.Containers), "spool_bytes", res.SpoolBytes)
	m := &Manifest{Format: ManifestFormat, Version: o.Version, CapturedAt: start.UTC(), DB: c.db}

	// 2-5. Archive, compress, encrypt, upload: one stream into the first destination.
	first := &res.Destinations[0]
	up, err := o.upload(ctx, dests[0], key, c, m)
	if err != nil {
		first.Error = err.Error()
		return res, o.keepLocal(ctx, res, key, c, fmt.Errorf("snapshot %s: destination %s: %w", res.Name, dests[0].Name, err))
	}
	if c.stream != nil {
		_ = c.stream.close() // its error, if any, is the cleanup's
	}
	res.Size, res.SHA256, res.Files = up.size, up.sha256, len(m.Files)
	res.Degraded, res.MissingAttachments = m.Degraded, len(m.MissingAttachments)
	if m.Degraded {
		log.Warn("snapshot is degraded: attachment rows without their file", "missing", len(m.MissingAttachments))
	}
	info := newInfo(res.Name, start, up, m, o.Version)

	// 6. Verify the first copy.
	keys, canDecrypt := o.Encrypter.Keys()
	kp := &keys
	if !canDecrypt {
		kp = nil // public-key modes: the process cannot decrypt, compare the archive hash instead
	}
	first.Verified, err = verifyObject(ctx, dests[0].Store, key, up, m, kp, dests[0].Verify)
	if err != nil {
		first.Error = err.Error()
		// An archive that failed its check must not pass for a snapshot: a
		// restore of "latest" would pick it and retention would count it.
		if derr := dests[0].Store.Delete(context.WithoutCancel(ctx), key); derr != nil {
			log.Error("unverified snapshot left in place: delete it by hand", "name", res.Name, "error", derr)
		}
		return res, fmt.Errorf("snapshot %s: destination %s: verify: %w", res.Name, dests[0].Name, err)
	}
	log.Info("snapshot uploaded and verified", "destination", dests[0].Name, "size", up.size, "verified", first.Verified)

	// 7. Extra destinations get the verified bytes of the first copy.
	for i := 1; i < len(dests); i++ {
		dr := &res.Destinations[i]
		dr.Verified, err = replicate(ctx, dests[0].Store, dests[i], key, up)
		if err != nil {
			dr.Error = err.Error()
			log.Error("snapshot destination failed", "destination", dests[i].Name, "error", err)
		}
	}

	// 8-9. Sidecar, -latest copy and retention where the copy is verified.
	for i, d := range dests {
		dr := &res.Destinations[i]
		if dr.Error != "" {
			continue
		}
		if err := o.finish(ctx, d, dr, info); err != nil {
			dr.Error = err.Error()
			log.Error("snapshot destination failed", "destination", d.Name, "error", err)
			continue
		}
		dr.OK = true
	}
	if res.Destinations[0].OK {
		o.flushFallback(ctx, dests[0], res)
	}
	return res, o.outcome(res)
}

// outcome is the run's error: any failed destination when RequireAll, else
// only the first destination.
func (o Options) outcome(res *Result) error {
	var failed []string
	for i, d := range res.Destinations {
		if d.OK || (i > 0 && !o.RequireAll) {
			continue
		}
		failed = append(failed, d.Name+": "+d.Error)
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("snapshot %s failed at %d destination(s): %s", res.Name, len(failed), strings.Join(failed, "; "))
}

// uploaded describes the archive as it was streamed.
type uploaded struct {
	size     int64
	expanded int64 // bytes of the tar stream inside
	sha256   string
	etag     string
}

// upload streams the archive into key of d, refusing to replace an existing snapshot.
func (o Options) upload(ctx context.Context, d Destination, key string, c *capture, m *Manifest) (uploaded, error) {
	if _, err := d.Store.Stat(ctx, key); err == nil {
		return uploaded{}, fmt.Errorf("%s already exists", key)
	} else if !errors.Is(err, objstore.ErrNotFound) {
		return uploaded{}, fmt.Errorf("stat %s: %w", key, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	var expanded int64
	go func() {
		var err error
		expanded, err = o.pipeline(ctx, pw, c, m)
		pw.CloseWithError(err) // nil closes with io.EOF
		done <- err
	}()
	// The archive's SHA-256 is taken on the reading side of the pipe: in the
	// goroutine that fills the upload's part buffers, not in the one that
	// encrypts. It covers exactly the bytes the store was given.
	hr := newHashReader(pr)
	var r io.Reader = hr
	if o.Progress != nil {
		r = &progressReader{r: hr, fn: o.Progress}
	}
	// The Stat above gives a readable error early; the condition makes two runs
	// in the same second (scheduler and `vwstream backup`) unable to overwrite
	// each other's archive.
	info, perr := d.Store.Put(ctx, key, r, objstore.PutOptions{ContentType: "application/octet-stream", IfNoneMatch: true})
	if errors.Is(perr, objstore.ErrPrecondition) {
		perr = fmt.Errorf("%s already exists", key)
	}
	if perr != nil {
		cancel()
		pr.CloseWithError(perr) // unblocks the pipeline if the store gave up early
	}
	werr := <-done
	switch {
	case werr != nil && !errors.Is(werr, io.ErrClosedPipe) && !errors.Is(werr, context.Canceled):
		if perr == nil {
			_ = d.Store.Delete(context.WithoutCancel(ctx), key)
		}
		return uploaded{}, werr // the archive side failed first: its error is the cause
	case perr != nil:
		return uploaded{}, fmt.Errorf("upload: %w", perr)
	case werr != nil:
		return uploaded{}, werr
	}
	if info.Size != hr.n {
		return uploaded{}, fmt.Errorf("upload: stored %d bytes, sent %d", info.Size, hr.n)
	}
	return uploaded{size: hr.n, expanded: expanded, sha256: hr.sum(), etag: info.ETag}, nil
}

// pipeline writes tar -> compression -> encryption into w and returns the
// size of the tar stream.
func (o Options) pipeline(ctx context.Context, w io.Writer, c *capture, m *Manifest) (int64, error) {
	enc, err := o.Encrypter.Encrypt(w)
	if err != nil {
		return 0, err
	}
	zw, err := compressor(enc, o.Compression)
	if err != nil {
		return 0, err
	}
	tarw := &countingWriter{w: zw}
	if err := writeArchive(ctx, tarw, c, m); err != nil {
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, fmt.Errorf("compress: %w", err)
	}
	if err := enc.Close(); err != nil {
		return 0, fmt.Errorf("encrypt: %w", err)
	}
	return tarw.n, nil
}

// countingWriter counts what passes through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type progressReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if n > 0 {
		p.fn(p.n)
	}
	return n, err
}
