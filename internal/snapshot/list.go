package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/vwstream/vwstream/internal/bucket/layout"
	"github.com/vwstream/vwstream/internal/objstore"
)

// List returns the snapshots stored in store, newest first. Objects under
// snapshots/ that do not match namer's pattern (foreign files, the -latest copy)
// are not listed. Each snapshot's sidecar is read when present. A nil namer
// means the default BACKUP_FILENAME in UTC.
func List(ctx context.Context, store objstore.Store, namer *Namer) ([]Info, error) {
	if namer == nil {
		var err error
		if namer, err = NewNamer(DefaultFilename, time.UTC); err != nil {
			return nil, err
		}
	}
	objs := map[string]objstore.ObjectInfo{}
	for obj, err := range store.List(ctx, layout.Snapshots) {
		if err != nil {
			return nil, fmt.Errorf("list snapshots in %s: %w", store, err)
		}
		objs[strings.TrimPrefix(obj.Key, layout.Snapshots)] = obj
	}
	var out []Info
	for name, obj := range objs {
		t, ok := namer.Parse(name)
		if !ok {
			continue
		}
		info := Info{Name: name, Time: t, Size: obj.Size, Encryption: encryptionOf(name), Compression: compressionOf(name)}
		if _, ok := objs[name+SidecarExt]; ok {
			side, err := readSidecar(ctx, store, name)
			if err != nil {
				return nil, err
			}
			if side != nil && side.Name == name {
				side.Time, side.Size = t, obj.Size // the name and the store are the authority
				info = *side
			}
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.After(out[j].Time)
		}
		return out[i].Name > out[j].Name
	})
	return out, nil
}

// readSidecar reads snapshots/<name>.json; a missing or unreadable sidecar is nil.
func readSidecar(ctx context.Context, store objstore.Store, name string) (*Info, error) {
	rc, err := store.Get(ctx, layout.Snapshots+name+SidecarExt, 0, -1)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read sidecar of %s: %w", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read sidecar of %s: %w", name, err)
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, nil // not ours to judge: list the archive without it
	}
	info.Sidecar = true
	return &info, nil
}

// finish writes the sidecar and the -latest copy at a destination whose copy
// is verified, then applies retention there.
func (o Options) finish(ctx context.Context, d Destination, dr *DestResult, info Info) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("encode sidecar: %w", err)
	}
	if _, err := d.Store.Put(ctx, layout.Snapshots+info.Name+SidecarExt, bytes.NewReader(b), objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("write sidecar: %w", err)
	}
	latest := LatestBase + Ext(info.Name)
	if _, err := d.Store.Copy(ctx, layout.Snapshots+info.Name, layout.Snapshots+latest); err != nil {
		return fmt.Errorf("copy to %s: %w", latest, err)
	}
	if _, err := d.Store.Copy(ctx, layout.Snapshots+info.Name+SidecarExt, layout.Snapshots+latest+SidecarExt); err != nil {
		return fmt.Errorf("copy sidecar to %s: %w", latest, err)
	}
	dr.Latest = latest
	// A -latest copy with another suffix (the compression or encryption changed)
	// would be stale now.
	var stale []string
	for obj, err := range d.Store.List(ctx, layout.Snapshots+LatestBase+".") {
		if err != nil {
			return fmt.Errorf("list -latest copies: %w", err)
		}
		n := strings.TrimPrefix(obj.Key, layout.Snapshots)
		if n != latest && n != latest+SidecarExt {
			stale = append(stale, obj.Key)
		}
	}
	if len(stale) > 0 {
		if err := d.Store.Delete(ctx, stale...); err != nil {
			return fmt.Errorf("delete stale -latest copy: %w", err)
		}
	}
	pruned, err := o.prune(ctx, d.Store, info.Name)
	dr.Pruned = pruned
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	return nil
}

// prune deletes the expired snapshots (and their sidecars) of one destination;
// keep is the snapshot just verified there.
func (o Options) prune(ctx context.Context, store objstore.Store, keep string) ([]string, error) {
	if o.Retention.Days <= 0 {
		return nil, nil
	}
	if !o.Namer.Dated() {
		o.Logger.Warn("snapshot names carry no date (BACKUP_FILENAME): retention is off")
		return nil, nil
	}
	infos, err := List(ctx, store, o.Namer)
	if err != nil {
		return nil, err
	}
	cands := make([]Candidate, len(infos))
	for i, in := range infos {
		cands[i] = Candidate{Name: in.Name, Time: in.Time, Degraded: in.Degraded}
	}
	expired := o.Retention.Expired(cands, keep, o.Now())
	if len(expired) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, 2*len(expired))
	for _, n := range expired {
		keys = append(keys, layout.Snapshots+n, layout.Snapshots+n+SidecarExt)
	}
	if err := store.Delete(ctx, keys...); err != nil {
		return nil, fmt.Errorf("delete expired snapshots: %w", err)
	}
	o.Logger.Info("snapshots pruned", "store", store.String(), "deleted", expired)
	return expired, nil
}
