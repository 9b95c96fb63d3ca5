package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
)

// Fallback is a local folder (BACKUP_FALLBACK_DIR) that keeps the encrypted
// archive of a run whose upload to the first destination failed after the
// store's retries, so the snapshot exists somewhere; the next run whose upload
// succeeds uploads what it holds there, verifies it and deletes it.
type Fallback struct {
	Store objstore.Store // a local store; archives under snapshots/, each with its sidecar
	// MaxBytes bounds the archives kept: the oldest go first, the newest is
	// always kept (it may be the only copy of the latest state). 0: no bound.
	MaxBytes int64
}

// newInfo is the sidecar of an archive as uploaded.
func newInfo(name string, at time.Time, up uploaded, m *Manifest, version string) Info {
	return Info{Name: name, Time: at, Size: up.size, SHA256: up.sha256, Expanded: up.expanded,
		Encryption: encryptionOf(name), Compression: compressionOf(name),
		Degraded: m.Degraded, MissingAttachments: len(m.MissingAttachments), Files: len(m.Files),
		Integrity: m.DB.Integrity, Version: version, Sidecar: true}
}

// keepLocal writes the run's archive into the fallback folder after cause, the
// first destination's failure, and verifies it there. The run still fails
// (its error says where the archive is); a fallback that cannot take it (a
// full disk) keeps nothing half-written and adds its own error.
func (o Options) keepLocal(ctx context.Context, res *Result, key string, c *capture, cause error) error {
	fb := o.Fallback
	if fb == nil || fb.Store == nil || ctx.Err() != nil {
		return cause
	}
	local := Destination{Name: "local", Store: fb.Store, Verify: true}
	m := &Manifest{Format: ManifestFormat, Version: o.Version, CapturedAt: res.Time.UTC(), DB: c.db}
	up, err := o.upload(ctx, local, key, c, m)
	if err == nil {
		keys, canDecrypt := o.Encrypter.Keys()
		kp := &keys
		if !canDecrypt {
			kp = nil
		}
		if _, err = verifyObject(ctx, fb.Store, key, up, m, kp, true); err != nil {
			_ = fb.Store.Delete(context.WithoutCancel(ctx), key)
		}
	}
	if err == nil {
		err = putSidecar(ctx, fb.Store, newInfo(res.Name, res.Time, up, m, o.Version))
		if err != nil {
			_ = fb.Store.Delete(context.WithoutCancel(ctx), key)
		}
	}
	if err != nil {
		return errors.Join(cause, fmt.Errorf("snapshot %s: no local copy kept in %s: %w", res.Name, fb.Store, err))
	}
	res.Size, res.SHA256, res.Files = up.size, up.sha256, len(m.Files)
	res.Local = fb.Store.String()
	o.Logger.Warn("snapshot kept locally until a run can upload it", "name", res.Name, "store", fb.Store.String())
	o.boundFallback(ctx, res.Name)
	return fmt.Errorf("%w (archive kept in %s; the next successful run uploads it)", cause, fb.Store)
}

func putSidecar(ctx context.Context, store objstore.Store, info Info) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("encode sidecar: %w", err)
	}
	if _, err := store.Put(ctx, layout.Snapshots+info.Name+SidecarExt, bytes.NewReader(b), objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("write sidecar: %w", err)
	}
	return nil
}

// boundFallback drops the oldest archives while the folder holds more than
// MaxBytes, never newest (the archive just kept).
func (o Options) boundFallback(ctx context.Context, newest string) {
	if o.Fallback.MaxBytes <= 0 {
		return
	}
	infos, err := List(ctx, o.Fallback.Store, o.Namer)
	if err != nil {
		o.Logger.Error("local snapshot copies not listed", "error", err)
		return
	}
	var total int64
	for _, in := range infos {
		total += in.Size
	}
	for i := len(infos) - 1; i >= 0 && total > o.Fallback.MaxBytes; i-- {
		if infos[i].Name == newest {
			continue
		}
		if err := o.Fallback.Store.Delete(ctx, layout.Snapshots+infos[i].Name, layout.Snapshots+infos[i].Name+SidecarExt); err != nil {
			o.Logger.Error("local snapshot copy not dropped", "name", infos[i].Name, "error", err)
			continue
		}
		total -= infos[i].Size
		o.Logger.Warn("local snapshot copy dropped: BACKUP_FALLBACK_MAX_BYTES", "name", infos[i].Name, "size", infos[i].Size)
	}
}

// flushFallback uploads every archive the fallback folder holds to d (the
// first destination, which just took this run's archive), verifies each copy
// as the destination's extra copies are, writes its sidecar and deletes the
// local one. What fails stays local for the next run.
func (o Options) flushFallback(ctx context.Context, d Destination, res *Result) {
	if o.Fallback == nil || o.Fallback.Store == nil {
		return
	}
	infos, err := List(ctx, o.Fallback.Store, o.Namer)
	if err != nil {
		o.Logger.Error("local snapshot copies not listed", "error", err)
		return
	}
	for _, in := range infos {
		key := layout.Snapshots + in.Name
		_, err := replicate(ctx, o.Fallback.Store, d, key, uploaded{size: in.Size, sha256: in.SHA256})
		if err == nil {
			err = putSidecar(ctx, d.Store, in)
		}
		if err == nil {
			err = o.Fallback.Store.Delete(ctx, key, key+SidecarExt)
		}
		if err != nil {
			o.Logger.Error("local snapshot copy not uploaded; kept for the next run", "name", in.Name, "destination", d.Name, "error", err)
			continue
		}
		res.Uploaded = append(res.Uploaded, in.Name)
		o.Logger.Info("local snapshot copy uploaded", "name", in.Name, "destination", d.Name)
	}
}
