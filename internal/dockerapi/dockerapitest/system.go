package dockerapitest

import (
	"context"
	"runtime"
	"slices"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/system"

	"skiff.dev/skiff/internal/dockerapi"
)

// Info implements dockerapi.Backend.
func (b *Backend) Info(context.Context) (system.Info, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	in := system.Info{
		ID: "FAKE:BACKEND", Images: len(b.images), Driver: "fake", Name: "dockerapitest",
		OperatingSystem: "Skiff (dockerapitest fake)", OSType: "linux", Architecture: runtime.GOARCH,
		NCPU: runtime.NumCPU(), MemTotal: 1 << 30, LoggingDriver: "json-file", CgroupDriver: "cgroupfs",
		CgroupVersion: "2", DockerRootDir: "/var/lib/skiff", DefaultRuntime: "runc",
		Runtimes:        map[string]system.RuntimeWithStatus{"runc": {Runtime: system.Runtime{Path: "runc"}}},
		SystemTime:      time.Now().Format(time.RFC3339Nano),
		SecurityOptions: []string{}, Warnings: []string{}, Labels: []string{},
		NEventsListener: len(b.subs),
	}
	for _, c := range b.containers {
		in.Containers++
		if c.state == container.StateRunning {
			in.ContainersRunning++
		} else {
			in.ContainersStopped++
		}
	}
	return in, nil
}

// eventSub is one Events subscriber's filter.
type eventSub struct {
	since   time.Time
	filters dockerapi.Filters
}

func (s *eventSub) match(m events.Message) bool {
	f := s.filters
	attr := func(k string) string { return m.Actor.Attributes[k] }
	return matchAny(f["type"], func(v string) bool { return string(m.Type) == v }) &&
		matchAny(f["event"], func(v string) bool { return string(m.Action) == v }) &&
		matchAny(f["container"], func(v string) bool {
			return m.Type == events.ContainerEventType && (m.Actor.ID == v || attr("name") == v)
		}) &&
		matchAny(f["image"], func(v string) bool { return attr("image") == v || m.Type == events.ImageEventType && attr("name") == v }) &&
		matchAny(f["network"], func(v string) bool {
			return m.Type == events.NetworkEventType && (m.Actor.ID == v || attr("name") == v)
		}) &&
		matchAny(f["volume"], func(v string) bool { return m.Type == events.VolumeEventType && m.Actor.ID == v }) &&
		matchLabels(m.Actor.Attributes, f["label"])
}

// Events implements dockerapi.Backend.
func (b *Backend) Events(ctx context.Context, since, until time.Time, filters dockerapi.Filters) ([]events.Message, <-chan events.Message, error) {
	sub := &eventSub{since: since, filters: filters}
	b.mu.Lock()
	defer b.mu.Unlock()
	var past []events.Message
	for _, m := range b.events {
		t := time.Unix(0, m.TimeNano)
		if (since.IsZero() || !t.Before(since)) && (until.IsZero() || !t.After(until)) && sub.match(m) {
			past = append(past, m)
		}
	}
	past = slices.Clip(past)
	if !until.IsZero() {
		return past, nil, nil
	}
	ch := make(chan events.Message, 256)
	b.subs[ch] = sub
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		delete(b.subs, ch)
		close(ch)
		b.mu.Unlock()
	})
	return past, ch, nil
}
