package update

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vwstream/vwstream/internal/docker"
)

// replace updates one container from cur to the image its tag names now.
// Whatever fails after the old container is stopped, the old one ends up
// back under its name and running (rollback).
func (o Options) replace(ctx context.Context, cur *current, it Item) Item {
	step := func(format string, a ...any) {
		s := fmt.Sprintf(format, a...)
		it.Steps = append(it.Steps, s)
		o.Logger.Info("update: "+cur.name+": "+s, "container", cur.name)
	}
	pullCtx, cancel := context.WithTimeout(ctx, DefaultPullTimeout)
	err := o.Docker.Pull(pullCtx, cur.ref.String())
	cancel()
	if err != nil {
		it.Action, it.Error = ActionFailed, "pull: "+err.Error()
		return it
	}
	step("pulled %s", cur.ref)
	img, err := o.Docker.ImageInspect(ctx, cur.ref.String())
	if err != nil {
		it.Action, it.Error = ActionFailed, "inspect the pulled image: "+err.Error()
		return it
	}
	it.NewVersion = versionLabel(img.Config)
	if why := o.notYet(cur, img, it.NewVersion); why != "" {
		it.Action, it.Error = ActionSkipped, why
		return it
	}
	if img.ID == cur.imageID {
		// A multi-platform tag whose index changed for other platforms only:
		// this platform's image is the one running.
		it.Action = ActionUpToDate
		step("the tag moved for other platforms only; this platform's image is unchanged")
		return it
	}
	create, extra, err := createOptions(cur)
	if err != nil {
		it.Action, it.Error = ActionFailed, err.Error()
		return it
	}
	if ran, err := o.runHook(ctx, cur.id, cur.labels, HookPreUpdate); err != nil {
		it.Action, it.Error = ActionSkipped, err.Error()+"; not updated"
		return it
	} else if ran {
		step("ran the pre-update hook")
	}
	r := &rollback{o: o, cur: cur}
	var snapshot string
	protect := o.protected(cur)
	if protect {
		if snapshot, err = o.Protect.Snapshot(ctx); err != nil {
			it.Action, it.Error = ActionSkipped, "restore point: "+err.Error()+"; not updated"
			return it
		}
		step("took the restore point's snapshot %s", snapshot)
	}
	// mark runs once the old container has stopped: the restore point holds
	// every write of the old version.
	mark := func() error {
		if !protect {
			return nil
		}
		p, err := o.Protect.Mark(ctx)
		if err != nil {
			return fmt.Errorf("restore point: %w", err)
		}
		p.Snapshot = snapshot
		r.point, it.RestorePoint = &p, &p
		step("restore point at %s", p)
		return nil
	}
	newID, err := o.swap(ctx, cur, create, extra, r, mark, step)
	if err == nil {
		step("started the new container %s", shortID(newID))
		err = o.waitHealthy(ctx, newID)
	}
	if err != nil {
		it.Action, it.Error = ActionRolledBack, err.Error()
		if errors.Is(err, errUnhealthy) {
			o.Memory.remember(cur.name, it.NewDigest)
		}
		rerr := r.run(step)
		if r.stopped {
			it.DowntimeSeconds = time.Since(r.stoppedAt).Seconds()
		}
		if rerr != nil {
			it.Action = ActionFailed
			it.Error += "; rollback: " + rerr.Error()
		}
		return it
	}
	it.DowntimeSeconds = time.Since(r.stoppedAt).Seconds()
	step("the new container is healthy, %.1f s after the old one stopped", it.DowntimeSeconds)
	it.Action = ActionUpdated
	if ran, err := o.runHook(ctx, newID, cur.labels, HookPostUpdate); err != nil {
		step("%v", err)
	} else if ran {
		step("ran the post-update hook")
	}
	if err := o.Docker.Remove(ctx, cur.id, docker.RemoveOptions{}); err != nil {
		step("old container %s kept: %v", cur.name+AsideSuffix, err)
		return it
	}
	step("removed the old container")
	if o.Cleanup {
		if err := o.Docker.RemoveImage(ctx, cur.imageID); err != nil {
			step("old image %s kept: %v", shortID(cur.imageID), err)
		} else {
			step("removed the old image %s", shortID(cur.imageID))
		}
	}
	return it
}

// swap stops the old container, renames it aside, and creates, connects and
// starts the new one under the old name, recording in r what to undo.
func (o Options) swap(ctx context.Context, cur *current, create docker.CreateOptions, extra map[string]json.RawMessage,
	r *rollback, mark func() error, step func(string, ...any)) (string, error) {
	r.stopped, r.stoppedAt = true, time.Now()
	if err := o.Docker.Stop(ctx, cur.id, 0); err != nil {
		return "", fmt.Errorf("stop: %w", err)
	}
	step("stopped the old container")
	if err := mark(); err != nil {
		return "", err
	}
	if err := o.Docker.Rename(ctx, cur.id, cur.name+AsideSuffix); err != nil {
		return "", fmt.Errorf("rename aside: %w", err)
	}
	r.renamed = true
	step("renamed the old container to %s", cur.name+AsideSuffix)
	id, err := o.Docker.Create(ctx, create)
	if err != nil {
		return "", fmt.Errorf("create: %w", err)
	}
	r.newID = id
	for _, n := range slices.Sorted(maps.Keys(extra)) {
		if err := o.Docker.ConnectNetwork(ctx, n, id, extra[n]); err != nil {
			return id, fmt.Errorf("connect network %s: %w", n, err)
		}
	}
	if err := o.Docker.Start(ctx, id); err != nil {
		return id, fmt.Errorf("start: %w", err)
	}
	return id, nil
}

// rollback undoes a replacement that failed at any step.
type rollback struct {
	o         Options
	cur       *current
	stopped   bool
	stoppedAt time.Time
	renamed   bool
	newID     string
	point     *RestorePoint // a protected container's, once its old version stopped
}

// run removes the new container, gives the old one its name back and starts
// it, then checks it runs (healthy, when it has a healthcheck). It uses its
// own context: a cancelled pass still restores the old container.
func (r *rollback) run(step func(string, ...any)) error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultRestoreTimeout)
	defer cancel()
	var errs []error
	removed := true
	if r.newID != "" {
		if err := r.o.Docker.Remove(ctx, r.newID, docker.RemoveOptions{Force: true, Volumes: true}); err != nil && !errors.Is(err, docker.ErrNotFound) {
			errs = append(errs, fmt.Errorf("remove the new container: %w", err))
			removed = false
		} else {
			step("removed the new container")
		}
	}
	if r.point != nil && r.newID != "" {
		// The new version may have migrated the database: the old one must
		// not start on data it cannot read, nor beside a new one still
		// writing. When the data cannot be put back, the old container stays
		// stopped and the error says how to restore by hand.
		var err error
		if !removed {
			err = errors.New("the new container may still be writing to it")
		} else {
			var did string
			if did, err = r.o.Protect.PutBack(ctx, *r.point); err == nil {
				step("%s", did)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("put the data back to %s: %w; the old container is left stopped: "+
				"stop vwstream, run `vwstream restore --to DATA_FOLDER --force --txid %d`, then start vwstream and the container", r.point, err, r.point.TXID))
			r.stopped = false
		}
	}
	if r.renamed {
		if err := r.o.Docker.Rename(ctx, r.cur.id, r.cur.name); err != nil {
			errs = append(errs, fmt.Errorf("rename back: %w", err))
		} else {
			step("renamed the old container back to %s", r.cur.name)
		}
	}
	if r.stopped {
		if err := r.o.Docker.Start(ctx, r.cur.id); err != nil {
			return errors.Join(append(errs, fmt.Errorf("start the old container: %w", err))...)
		}
		if err := r.o.waitHealthy(ctx, r.cur.id); err != nil {
			return errors.Join(append(errs, fmt.Errorf("the old container: %w", err))...)
		}
		step("the old container runs again")
	}
	return errors.Join(errs...)
}

// waitHealthy waits for a started container: healthy within HealthTimeout
// when it has a healthcheck, else running without a restart for StableFor.
// Exiting, or a healthcheck reporting unhealthy, ends the wait at once.
func (o Options) waitHealthy(ctx context.Context, id string) error {
	deadline := time.Now().Add(o.HealthTimeout + o.StableFor)
	for {
		info, err := o.Docker.Inspect(ctx, id)
		if err != nil {
			return fmt.Errorf("inspect: %w", err)
		}
		st := info.State
		switch {
		case !st.Running:
			return fmt.Errorf("%w: exited with code %d", errUnhealthy, st.ExitCode)
		case st.Health != nil && st.Health.Status == "healthy":
			return nil
		case st.Health != nil && st.Health.Status == "unhealthy":
			return fmt.Errorf("%w: its healthcheck reports unhealthy", errUnhealthy)
		case st.Health == nil && time.Since(st.StartedAt) >= o.StableFor:
			return nil // a restart moves StartedAt, so this is an uninterrupted run
		}
		if time.Now().After(deadline) {
			status := "running, restarted"
			if st.Health != nil {
				status = st.Health.Status
			}
			return fmt.Errorf("%w: still %s after %s", errUnhealthy, status, o.HealthTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.PollInterval):
		}
	}
}

// createOptions builds the new container from the old one's inspection: its
// Config without what were the old image's defaults (so the new image's
// apply), its HostConfig plus its anonymous volumes (so their data carries
// over), and its networks with their aliases minus the old container-ID
// alias. The first network is given at create; the others (extra) are
// connected before the start, as Engines before API 1.44 take one.
func createOptions(cur *current) (docker.CreateOptions, map[string]json.RawMessage, error) {
	var ins struct {
		Config          map[string]json.RawMessage `json:"Config"`
		HostConfig      map[string]any             `json:"HostConfig"`
		Mounts          []struct{ Type, Name, Destination string }
		NetworkSettings struct {
			Networks map[string]map[string]json.RawMessage `json:"Networks"`
		} `json:"NetworkSettings"`
	}
	if err := json.Unmarshal(cur.raw, &ins); err != nil {
		return docker.CreateOptions{}, nil, fmt.Errorf("read the old configuration: %w", err)
	}
	var def map[string]json.RawMessage
	_ = json.Unmarshal(cur.image.Config, &def)
	cfg := ins.Config
	short := shortID(cur.id)
	img, _ := json.Marshal(cur.ref.String())
	cfg["Image"] = img
	if cur.hostname == short {
		delete(cfg, "Hostname") // the Engine's default, the old id
	}
	for _, k := range []string{"Entrypoint", "Cmd", "WorkingDir", "User", "StopSignal", "Healthcheck", "Shell", "OnBuild"} {
		if v, ok := cfg[k]; ok && jsonEqual(v, def[k]) {
			delete(cfg, k)
		}
	}
	cfg["Env"] = minusList(cfg["Env"], def["Env"])
	for _, k := range []string{"Labels", "ExposedPorts", "Volumes"} {
		cfg[k] = minusMap(cfg[k], def[k])
	}

	hc := ins.HostConfig
	binds, _ := hc["Binds"].([]any)
	named := map[string]bool{}
	for _, b := range binds {
		if s, ok := b.(string); ok {
			named[strings.SplitN(s, ":", 2)[0]] = true
		}
	}
	if ms, ok := hc["Mounts"].([]any); ok {
		for _, m := range ms {
			if mm, ok := m.(map[string]any); ok {
				if s, ok := mm["Source"].(string); ok {
					named[s] = true
				}
			}
		}
	}
	for _, m := range ins.Mounts {
		if m.Type == "volume" && m.Name != "" && !named[m.Name] {
			binds = append(binds, m.Name+":"+m.Destination)
		}
	}
	if len(binds) > 0 {
		hc["Binds"] = binds
	}
	hostCfg, err := json.Marshal(hc)
	if err != nil {
		return docker.CreateOptions{}, nil, err
	}

	mode, _ := hc["NetworkMode"].(string)
	if mode == "default" || mode == "" {
		mode = "bridge"
	}
	endpoints := map[string]json.RawMessage{}
	for name, ep := range ins.NetworkSettings.Networks {
		keep := map[string]json.RawMessage{}
		for _, k := range []string{"IPAMConfig", "Links", "DriverOpts"} {
			if v, ok := ep[k]; ok && string(v) != "null" {
				keep[k] = v
			}
		}
		var aliases []string
		_ = json.Unmarshal(ep["Aliases"], &aliases)
		aliases = slices.DeleteFunc(aliases, func(a string) bool { return a == short || a == cur.id })
		if len(aliases) > 0 {
			keep["Aliases"], _ = json.Marshal(aliases)
		}
		endpoints[name], _ = json.Marshal(keep)
	}
	o := docker.CreateOptions{Name: cur.name, HostConfig: hostCfg}
	o.Config, err = json.Marshal(cfg)
	if err != nil {
		return o, nil, err
	}
	if mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:") {
		return o, nil, nil
	}
	primary, ok := endpoints[mode]
	if !ok { // NetworkMode may name the network by id; take the first
		for _, n := range slices.Sorted(maps.Keys(endpoints)) {
			mode, primary = n, endpoints[n]
			break
		}
	}
	if primary != nil {
		o.NetworkingConfig, _ = json.Marshal(map[string]any{"EndpointsConfig": map[string]json.RawMessage{mode: primary}})
		delete(endpoints, mode)
	}
	return o, endpoints, nil
}

// minusList is the JSON string list a without the entries also in b.
func minusList(a, b json.RawMessage) json.RawMessage {
	var as, bs []string
	_ = json.Unmarshal(a, &as)
	_ = json.Unmarshal(b, &bs)
	out := slices.DeleteFunc(as, func(s string) bool { return slices.Contains(bs, s) })
	r, _ := json.Marshal(out)
	return r
}

// minusMap is the JSON object a without the keys b has with the same value.
func minusMap(a, b json.RawMessage) json.RawMessage {
	var am, bm map[string]json.RawMessage
	_ = json.Unmarshal(a, &am)
	_ = json.Unmarshal(b, &bm)
	for k, v := range am {
		if bv, ok := bm[k]; ok && jsonEqual(v, bv) {
			delete(am, k)
		}
	}
	r, _ := json.Marshal(am)
	return r
}

func jsonEqual(a, b json.RawMessage) bool {
	norm := func(x json.RawMessage) []byte {
		var v any
		if len(x) == 0 || json.Unmarshal(x, &v) != nil {
			return []byte("null")
		}
		out, _ := json.Marshal(v)
		return out
	}
	return bytes.Equal(norm(a), norm(b))
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
