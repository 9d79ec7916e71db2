package dockerapi

import (
	"context"
	"io"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
)

// Backend is what the Docker Engine API serves. The container engine
// (internal/engine) implements it; tests use fakes. Errors are wrapped
// errdefs kinds; the server maps them to HTTP status codes.
type Backend interface {
	ContainerBackend
	ExecBackend
	ImageBackend
	NetworkBackend
	VolumeBackend
	SystemBackend
}

// Filters are the decoded `filters` query parameter: key → values
// (e.g. "label" → ["app=web"], "status" → ["running"]).
type Filters map[string][]string

// ContainerBackend manages containers.
type ContainerBackend interface {
	// ContainerCreate creates (but does not start) a container. name may
	// be empty (a name is generated).
	ContainerCreate(ctx context.Context, name string, req container.CreateRequest) (container.CreateResponse, error)
	// ContainerStart starts a created or exited container; errdefs.ErrNotModified
	// if it is already running.
	ContainerStart(ctx context.Context, nameOrID string) error
	// ContainerStop sends the stop signal, waits the timeout, then kills.
	// errdefs.ErrNotModified if it is not running.
	ContainerStop(ctx context.Context, nameOrID string, opts StopOptions) error
	ContainerRestart(ctx context.Context, nameOrID string, opts StopOptions) error
	// ContainerKill sends signal (name like "KILL"/"SIGKILL" or number;
	// empty means SIGKILL). Conflict if the container is not running.
	ContainerKill(ctx context.Context, nameOrID, signal string) error
	// ContainerWait blocks until condition is reached (or ctx ends) and
	// returns the exit status. It returns an error at once if the container
	// does not exist. ready, if not nil, is closed once the wait is
	// registered (the API answers 200 and flushes headers then).
	ContainerWait(ctx context.Context, nameOrID string, condition container.WaitCondition, ready chan<- struct{}) (container.WaitResponse, error)
	ContainerRemove(ctx context.Context, nameOrID string, opts RemoveOptions) error
	ContainerList(ctx context.Context, opts ListOptions) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, nameOrID string, size bool) (container.InspectResponse, error)
	// ContainerLogs sends log entries to fn in order until the end of the
	// log (or, with Follow, until the container stops or ctx ends).
	ContainerLogs(ctx context.Context, nameOrID string, opts LogsOptions, fn func(LogEntry) error) error
	// ContainerAttach connects the given streams to the container's stdio
	// until it exits, ctx ends, or stdin hits the detach keys / EOF
	// (when the container does not keep stdin open). For TTY containers
	// everything goes to Stdout.
	ContainerAttach(ctx context.Context, nameOrID string, opts AttachOptions) error
	ContainerResize(ctx context.Context, nameOrID string, height, width uint) error
	ContainerTop(ctx context.Context, nameOrID, psArgs string) (container.TopResponse, error)
	// ContainerStats returns one sample of the container's resource usage.
	ContainerStats(ctx context.Context, nameOrID string) (container.StatsResponse, error)
	ContainerPrune(ctx context.Context, filters Filters) (container.PruneReport, error)
	// ContainerExport writes the container's filesystem as a tar stream.
	ContainerExport(ctx context.Context, nameOrID string, w io.Writer) error
	// ContainerCommit makes an image from the container's changes and
	// returns its ID.
	ContainerCommit(ctx context.Context, nameOrID string, opts CommitOptions) (string, error)
	ContainerRename(ctx context.Context, nameOrID, newName string) error
}

// ExecBackend runs extra processes in running containers.
type ExecBackend interface {
	ExecCreate(ctx context.Context, nameOrID string, req container.ExecCreateRequest) (string, error)
	// ExecStart runs the exec process, streaming its stdio, and returns
	// when it exits (the exit code is then in ExecInspect). With
	// opts.Detach it returns once the process has started. ctx ends when
	// the client hangs up or the server shuts down.
	ExecStart(ctx context.Context, execID string, opts ExecStartOptions) error
	ExecResize(ctx context.Context, execID string, height, width uint) error
	ExecInspect(ctx context.Context, execID string) (container.ExecInspectResponse, error)
}

// ImageBackend manages images. Operations with progress write plain,
// human-readable lines to progress; the server turns them into Docker's
// JSON message stream.
type ImageBackend interface {
	ImageList(ctx context.Context, opts ImageListOptions) ([]image.Summary, error)
	ImageInspect(ctx context.Context, nameOrID string) (image.InspectResponse, error)
	ImageHistory(ctx context.Context, nameOrID string) ([]image.HistoryResponseItem, error)
	ImageTag(ctx context.Context, source, target string) error
	ImageRemove(ctx context.Context, nameOrID string, force, prune bool) ([]image.DeleteResponse, error)
	// ImagePull pulls ref; auth is the decoded X-Registry-Auth (may be empty).
	ImagePull(ctx context.Context, ref, platform string, auth RegistryAuth, progress io.Writer) error
	ImagePush(ctx context.Context, ref string, auth RegistryAuth, progress io.Writer) error
	// ImageLoad loads a docker-archive or OCI archive and returns the
	// loaded names (or IDs); the API reports them ("Loaded image: ...").
	ImageLoad(ctx context.Context, r io.Reader, progress io.Writer) ([]string, error)
	ImageSave(ctx context.Context, names []string, w io.Writer) error
	// ImageBuild builds from a tar build context and returns the image ID.
	// The API adds the aux ID message and the "Successfully built/tagged"
	// lines itself.
	ImageBuild(ctx context.Context, buildContext io.Reader, opts BuildOptions, progress io.Writer) (string, error)
	ImagePrune(ctx context.Context, filters Filters) (image.PruneReport, error)
}

// NetworkBackend manages container networks.
type NetworkBackend interface {
	NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error)
	NetworkList(ctx context.Context, filters Filters) ([]network.Summary, error)
	NetworkInspect(ctx context.Context, nameOrID string) (network.Inspect, error)
	NetworkRemove(ctx context.Context, nameOrID string) error
	NetworkConnect(ctx context.Context, nameOrID, containerNameOrID string, settings *network.EndpointSettings) error
	NetworkDisconnect(ctx context.Context, nameOrID, containerNameOrID string, force bool) error
	NetworkPrune(ctx context.Context, filters Filters) (network.PruneReport, error)
}

// VolumeBackend manages named volumes.
type VolumeBackend interface {
	VolumeCreate(ctx context.Context, req volume.CreateRequest) (volume.Volume, error)
	VolumeList(ctx context.Context, filters Filters) ([]volume.Volume, error)
	VolumeInspect(ctx context.Context, name string) (volume.Volume, error)
	VolumeRemove(ctx context.Context, name string, force bool) error
	VolumePrune(ctx context.Context, filters Filters) (volume.PruneReport, error)
}

// SystemBackend answers info and streams events.
type SystemBackend interface {
	Info(ctx context.Context) (system.Info, error)
	// Events returns the recorded events matching filters between since
	// and until (zero: unbounded) and, when until is zero, a channel of
	// later ones that is closed when ctx ends.
	Events(ctx context.Context, since, until time.Time, filters Filters) ([]events.Message, <-chan events.Message, error)
}

// StopOptions for stop and restart. Timeout nil means the container's own
// StopTimeout (default 10 s); negative waits forever.
type StopOptions struct {
	Signal  string
	Timeout *int
}

// RemoveOptions for container removal.
type RemoveOptions struct {
	Force         bool
	RemoveVolumes bool
}

// ListOptions for container listing.
type ListOptions struct {
	All     bool
	Limit   int
	Size    bool
	Filters Filters
}

// LogsOptions select which log entries to send.
type LogsOptions struct {
	Stdout, Stderr bool
	Follow         bool
	// Tail is "all" or a number of lines from the end.
	Tail         string
	Since, Until time.Time
}

// LogEntry is one line (or partial line) of a container's output.
type LogEntry struct {
	// Stream is "stdout" or "stderr".
	Stream string
	Time   time.Time
	// Line includes its trailing newline when it had one.
	Line []byte
}

// AttachOptions are the streams to connect; nil streams are not attached.
type AttachOptions struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Logs replays the log first; Stream then follows live output.
	Logs, Stream bool
	DetachKeys   string
	// Ready, if not nil, is closed once the streams are attached (before
	// any log replay). The API starts the client's stream then, so a
	// client that attaches and then starts the container (`docker run`)
	// misses none of its output.
	Ready chan<- struct{}
}

// ExecStartOptions are the exec process's streams.
type ExecStartOptions struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Detach         bool
}

// CommitOptions for ContainerCommit.
type CommitOptions struct {
	Reference string // repo[:tag], may be empty
	Author    string
	Comment   string
	Pause     bool
	Changes   []string // Dockerfile instructions like "CMD [\"sh\"]"
	Config    *container.Config
}

// ImageListOptions for ImageList.
type ImageListOptions struct {
	All     bool
	Filters Filters
}

// RegistryAuth is the decoded X-Registry-Auth header.
type RegistryAuth struct {
	Username, Password, IdentityToken, ServerAddress string
}

// BuildOptions are the query parameters of POST /build.
type BuildOptions struct {
	Tags       []string
	Dockerfile string
	BuildArgs  map[string]string
	Target     string
	NoCache    bool
	Quiet      bool
	Platform   string
	Labels     map[string]string
	Remove     bool
}
