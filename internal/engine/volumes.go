package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/volume"

	"skiff.dev/skiff/internal/atomicfile"
	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/errdefs"
)

// anonymousLabel marks volumes created for one container (-v /path), which
// `rm -v` removes with it.
const anonymousLabel = "dev.skiff.anonymous-for"

// volumes are local named volumes: <dir>/<name>/_data plus volume.json.
type volumes struct {
	dir string
	mu  sync.Mutex
}

type vol struct {
	Name      string
	Labels    map[string]string
	Options   map[string]string
	CreatedAt time.Time
	root      string
}

func (v *vol) dataDir() string { return filepath.Join(v.root, "_data") }

func newVolumes(dir string) *volumes { return &volumes{dir: dir} }

// ensure returns the volume, creating it when missing.
func (vs *volumes) ensure(name string, labels map[string]string) (*vol, error) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if v, err := vs.get(name); err == nil {
		return v, nil
	}
	return vs.create(name, labels, nil)
}

func (vs *volumes) create(name string, labels, options map[string]string) (*vol, error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed: %w", name, name, errdefs.ErrInvalid)
	}
	v := &vol{Name: name, Labels: labels, Options: options, CreatedAt: time.Now().UTC(), root: filepath.Join(vs.dir, name)}
	if err := os.MkdirAll(v.dataDir(), 0o755); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	b, _ := json.Marshal(v)
	if err := atomicfile.WriteFile(filepath.Join(v.root, "volume.json"), b, 0o600); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	return v, nil
}

func (vs *volumes) get(name string) (*vol, error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
	}
	root := filepath.Join(vs.dir, name)
	b, err := os.ReadFile(filepath.Join(root, "volume.json"))
	if err != nil {
		return nil, fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
	}
	v := &vol{root: root}
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("volume %s: corrupt metadata: %w", name, err)
	}
	return v, nil
}

func (vs *volumes) list() []*vol {
	entries, _ := os.ReadDir(vs.dir)
	var out []*vol
	for _, e := range entries {
		if v, err := vs.get(e.Name()); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// copyUp copies what the image has at target into an empty volume the
// first time it is mounted there, as Docker does.
func (vs *volumes) copyUp(v *vol, rootfs, target string) {
	entries, err := os.ReadDir(v.dataDir())
	if err != nil || len(entries) > 0 {
		return
	}
	src, err := securejoin.SecureJoin(rootfs, target)
	if err != nil {
		return
	}
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return
	}
	// cp -a keeps ownership, modes, links and xattrs; it is in coreutils.
	_ = exec.Command("cp", "-a", src+"/.", v.dataDir()+"/").Run()
}

func (v *vol) api() volume.Volume {
	return volume.Volume{
		Name:       v.Name,
		Driver:     "local",
		Mountpoint: v.dataDir(),
		CreatedAt:  v.CreatedAt.Format(time.RFC3339),
		Labels:     orEmpty(v.Labels),
		Options:    orEmpty(v.Options),
		Scope:      "local",
	}
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// volumeUsers returns the containers that mount the volume.
func (e *Engine) volumeUsers(name string) []string {
	var ids []string
	for _, c := range e.ctrs.all() {
		c.mu.Lock()
		for _, b := range c.rec.HostConfig.Binds {
			if src, _, err := parseBind(b); err == nil && src == name {
				ids = append(ids, c.rec.ID)
			}
		}
		for _, m := range c.rec.HostConfig.Mounts {
			if m.Source == name {
				ids = append(ids, c.rec.ID)
			}
		}
		for _, b := range c.rec.HostConfig.Binds {
			if src, o, err := parseBind(b); err == nil && src == "" && anonymousVolume(c.rec.ID, o.Target) == name {
				ids = append(ids, c.rec.ID)
			}
		}
		c.mu.Unlock()
	}
	return ids
}

// VolumeCreate creates a named volume (a random name when empty).
func (e *Engine) VolumeCreate(ctx context.Context, req volume.CreateRequest) (volume.Volume, error) {
	if req.Driver != "" && req.Driver != "local" {
		return volume.Volume{}, fmt.Errorf("volume driver %q is not supported (only \"local\"): %w", req.Driver, errdefs.ErrInvalid)
	}
	name := req.Name
	if name == "" {
		name = newID()
	}
	e.volumes.mu.Lock()
	v, err := e.volumes.get(name)
	if err != nil {
		v, err = e.volumes.create(name, req.Labels, req.DriverOpts)
	}
	e.volumes.mu.Unlock()
	if err != nil {
		return volume.Volume{}, err
	}
	e.publish(events.VolumeEventType, events.ActionCreate, name, map[string]string{"driver": "local"})
	return v.api(), nil
}

// VolumeList lists volumes; filters: name, label, dangling.
func (e *Engine) VolumeList(ctx context.Context, filters dockerapi.Filters) ([]volume.Volume, error) {
	var out []volume.Volume
	for _, v := range e.volumes.list() {
		if !matchVolume(v, filters, len(e.volumeUsers(v.Name)) > 0) {
			continue
		}
		out = append(out, v.api())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func matchVolume(v *vol, f dockerapi.Filters, inUse bool) bool {
	for _, n := range f["name"] {
		if !containsFold(v.Name, n) {
			return false
		}
	}
	for _, d := range f["dangling"] {
		if (d == "true" || d == "1") == inUse {
			return false
		}
	}
	return matchLabels(v.Labels, f["label"])
}

// VolumeInspect returns one volume.
func (e *Engine) VolumeInspect(ctx context.Context, name string) (volume.Volume, error) {
	v, err := e.volumes.get(name)
	if err != nil {
		return volume.Volume{}, err
	}
	return v.api(), nil
}

// VolumeRemove removes a volume no container uses.
func (e *Engine) VolumeRemove(ctx context.Context, name string, force bool) error {
	e.volumes.mu.Lock()
	defer e.volumes.mu.Unlock()
	v, err := e.volumes.get(name)
	if err != nil {
		if force && errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		return err
	}
	if users := e.volumeUsers(name); len(users) > 0 {
		return fmt.Errorf("remove %s: volume is in use - [%s]: %w", name, users[0], errdefs.ErrConflict)
	}
	if err := os.RemoveAll(v.root); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	e.publish(events.VolumeEventType, events.ActionDestroy, name, map[string]string{"driver": "local"})
	return nil
}

// VolumePrune removes unused anonymous volumes (all unused with all=true).
func (e *Engine) VolumePrune(ctx context.Context, filters dockerapi.Filters) (volume.PruneReport, error) {
	all := false
	for _, v := range filters["all"] {
		all = v == "true" || v == "1"
	}
	var rep volume.PruneReport
	for _, v := range e.volumes.list() {
		if len(e.volumeUsers(v.Name)) > 0 || !matchLabels(v.Labels, filters["label"]) {
			continue
		}
		if !all && v.Labels[anonymousLabel] == "" && len(v.Name) != 64 {
			continue
		}
		size := dirSize(v.dataDir())
		if err := e.VolumeRemove(ctx, v.Name, false); err == nil {
			rep.VolumesDeleted = append(rep.VolumesDeleted, v.Name)
			rep.SpaceReclaimed += uint64(size)
		}
	}
	return rep, nil
}

func (e *Engine) removeAnonymousVolumes(c *ctr) {
	for _, b := range c.rec.HostConfig.Binds {
		if src, o, err := parseBind(b); err == nil && src == "" {
			name := anonymousVolume(c.rec.ID, o.Target)
			if v, err := e.volumes.get(name); err == nil {
				_ = os.RemoveAll(v.root)
			}
		}
	}
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
