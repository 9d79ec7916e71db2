package dockerapitest

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/errdefs"
)

// ContainerList implements dockerapi.Backend.
func (b *Backend) ContainerList(_ context.Context, opts dockerapi.ListOptions) ([]container.Summary, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cs := slices.Collect(maps.Values(b.containers))
	slices.SortFunc(cs, func(x, y *fakeContainer) int { return y.created.Compare(x.created) })
	var out []container.Summary
	for _, c := range cs {
		if !opts.All && opts.Limit <= 0 && c.state != container.StateRunning {
			continue
		}
		if !matchContainer(c, opts.Filters) {
			continue
		}
		if opts.Limit > 0 && len(out) == opts.Limit {
			break
		}
		out = append(out, b.summary(c))
	}
	return out, nil
}

func matchContainer(c *fakeContainer, f dockerapi.Filters) bool {
	return matchAny(f["id"], func(v string) bool { return strings.HasPrefix(c.id, v) }) &&
		matchAny(f["name"], func(v string) bool { return strings.Contains(c.name, strings.TrimPrefix(v, "/")) }) &&
		matchAny(f["status"], func(v string) bool { return string(c.state) == v }) &&
		matchAny(f["ancestor"], func(v string) bool { return c.config.Image == v || strings.HasPrefix(c.imageID, v) }) &&
		matchLabels(c.config.Labels, f["label"])
}

// matchAny is true when vals is empty or fn holds for one of them.
func matchAny(vals []string, fn func(string) bool) bool {
	return len(vals) == 0 || slices.ContainsFunc(vals, fn)
}

// matchLabels checks "key" and "key=value" filters (all must hold).
func matchLabels(labels map[string]string, filters []string) bool {
	for _, f := range filters {
		k, v, hasValue := strings.Cut(f, "=")
		got, ok := labels[k]
		if !ok || hasValue && got != v {
			return false
		}
	}
	return true
}

func (b *Backend) summary(c *fakeContainer) container.Summary {
	s := container.Summary{
		ID: c.id, Names: []string{"/" + c.name}, Image: c.config.Image, ImageID: c.imageID,
		Command: strings.Join(c.argv(), " "), Created: c.created.Unix(), Labels: c.config.Labels,
		State: c.state, Status: statusText(c), Ports: []container.PortSummary{}, Mounts: []container.MountPoint{},
		NetworkSettings: &container.NetworkSettingsSummary{Networks: maps.Clone(c.networks)},
	}
	s.HostConfig.NetworkMode = string(c.hostConfig.NetworkMode)
	return s
}

// statusText is the STATUS column of `docker ps`.
func statusText(c *fakeContainer) string {
	switch c.state {
	case container.StateRunning:
		return "Up " + humanDuration(time.Since(c.startedAt))
	case container.StateExited:
		return fmt.Sprintf("Exited (%d) %s ago", c.exitCode, humanDuration(time.Since(c.finishedAt)))
	default:
		return "Created"
	}
}

func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	case s < 120:
		return "About a minute"
	default:
		return fmt.Sprintf("%d minutes", s/60)
	}
}

// ContainerInspect implements dockerapi.Backend.
func (b *Backend) ContainerInspect(_ context.Context, ref string, size bool) (container.InspectResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.container(ref)
	if err != nil {
		return container.InspectResponse{}, err
	}
	argv := c.argv()
	cfg, hc := *c.config, *c.hostConfig
	r := container.InspectResponse{
		ID: c.id, Created: c.created.UTC().Format(time.RFC3339Nano), Path: argv[0], Args: argv[1:],
		State: &container.State{
			Status: c.state, Running: c.state == container.StateRunning, Pid: c.pid, ExitCode: c.exitCode,
			StartedAt: c.startedAt.UTC().Format(time.RFC3339Nano), FinishedAt: c.finishedAt.UTC().Format(time.RFC3339Nano),
		},
		Image: c.imageID, Name: "/" + c.name, RestartCount: c.restarts, Driver: "fake", Platform: "linux",
		HostConfig: &hc, Config: &cfg, Mounts: []container.MountPoint{},
		NetworkSettings: &container.NetworkSettings{Networks: maps.Clone(c.networks)},
	}
	for id, e := range b.execs {
		if e.c == c {
			r.ExecIDs = append(r.ExecIDs, id)
		}
	}
	if size {
		var rw, root int64 = 0, 1 << 20
		r.SizeRw, r.SizeRootFs = &rw, &root
	}
	return r, nil
}

// ContainerResize implements dockerapi.Backend.
func (b *Backend) ContainerResize(_ context.Context, ref string, height, width uint) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.container(ref)
	if err != nil {
		return err
	}
	if c.state != container.StateRunning {
		return errf(errdefs.ErrConflict, "container %s is not running", c.id)
	}
	c.size = [2]uint{height, width}
	return nil
}

// ContainerTop implements dockerapi.Backend.
func (b *Backend) ContainerTop(_ context.Context, ref, _ string) (container.TopResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.container(ref)
	if err != nil {
		return container.TopResponse{}, err
	}
	if c.state != container.StateRunning {
		return container.TopResponse{}, errf(errdefs.ErrConflict, "container %s is not running", c.id)
	}
	return container.TopResponse{
		Titles:    []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"},
		Processes: [][]string{{"root", fmt.Sprint(c.pid), "1", "0", c.startedAt.Format("15:04"), "?", "00:00:00", strings.Join(c.argv(), " ")}},
	}, nil
}

// ContainerStats implements dockerapi.Backend.
func (b *Backend) ContainerStats(_ context.Context, ref string) (container.StatsResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.container(ref)
	if err != nil {
		return container.StatsResponse{}, err
	}
	st := container.StatsResponse{ID: c.id, Name: "/" + c.name, OSType: "linux", Read: time.Now()}
	if c.state == container.StateRunning {
		c.cpu += 10_000_000
		st.CPUStats = container.CPUStats{
			CPUUsage:    container.CPUUsage{TotalUsage: c.cpu},
			SystemUsage: uint64(time.Now().UnixNano()),
			OnlineCPUs:  1,
		}
		st.MemoryStats = container.MemoryStats{Usage: 1 << 20, Limit: 1 << 30}
		st.PidsStats = container.PidsStats{Current: 1}
	}
	return st, nil
}

// ContainerPrune implements dockerapi.Backend.
func (b *Backend) ContainerPrune(_ context.Context, f dockerapi.Filters) (container.PruneReport, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var rep container.PruneReport
	for _, c := range b.containers {
		if c.state != container.StateRunning && matchLabels(c.config.Labels, f["label"]) {
			b.remove(c)
			rep.ContainersDeleted = append(rep.ContainersDeleted, c.id)
		}
	}
	slices.Sort(rep.ContainersDeleted)
	return rep, nil
}

// ContainerExport implements dockerapi.Backend: a tar with /etc/hostname.
func (b *Backend) ContainerExport(_ context.Context, ref string, w io.Writer) error {
	b.mu.Lock()
	c, err := b.container(ref)
	b.mu.Unlock()
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	body := []byte(shortID(c.id) + "\n")
	if err := tw.WriteHeader(&tar.Header{Name: "etc/hostname", Mode: 0o644, Size: int64(len(body)), ModTime: c.created}); err != nil {
		return err
	}
	if _, err := tw.Write(body); err != nil {
		return err
	}
	return tw.Close()
}

// ContainerCommit implements dockerapi.Backend. Of the changes, CMD,
// ENTRYPOINT (JSON form), ENV, LABEL, WORKDIR and USER are applied.
func (b *Backend) ContainerCommit(_ context.Context, ref string, opts dockerapi.CommitOptions) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.container(ref)
	if err != nil {
		return "", err
	}
	cfg := *c.config
	if opts.Config != nil {
		cfg = *mergeConfig(c.config, opts.Config)
	}
	for _, ch := range opts.Changes {
		if err := applyInstruction(&cfg, ch); err != nil {
			return "", err
		}
	}
	img := b.addImage(&cfg, opts.Comment, opts.Author)
	if opts.Reference != "" {
		if err := b.tag(img, opts.Reference); err != nil {
			return "", err
		}
	}
	b.emit(events.ContainerEventType, events.ActionCommit, c.id, map[string]string{"name": c.name})
	return img.id, nil
}

// ContainerRename implements dockerapi.Backend.
func (b *Backend) ContainerRename(_ context.Context, ref, newName string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.container(ref)
	if err != nil {
		return err
	}
	newName = strings.TrimPrefix(newName, "/")
	for _, o := range b.containers {
		if o.name == newName && o != c {
			return errf(errdefs.ErrConflict, "Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", newName, o.id)
		}
	}
	old := c.name
	c.name = newName
	b.emit(events.ContainerEventType, events.ActionRename, c.id, map[string]string{"name": newName, "oldName": "/" + old})
	return nil
}
