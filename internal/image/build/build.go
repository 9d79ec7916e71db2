package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/image/content"
)

// Error kinds returned (wrapped with context) by this package.
var (
	// ErrInvalid: the Dockerfile or an option is wrong (the message says
	// where and why).
	ErrInvalid = errdefs.ErrInvalid
	// ErrNotFound: a base image, stage or source file does not exist.
	ErrNotFound = errdefs.ErrNotFound
	// ErrUnavailable: the build needs something this machine cannot do
	// (RUN without a container engine, ADD of a remote URL).
	ErrUnavailable = errdefs.ErrUnavailable
)

// Store is what the builder needs from the content store.
type Store interface {
	content.Provider
	content.Manager
	content.RefStore
	WriteBlob(ctx context.Context, r io.Reader, size int64, expected digest.Digest) (ocispec.Descriptor, error)
	ReadBlob(ctx context.Context, dgst digest.Digest, limit int64) ([]byte, error)
	Root() string
}

var _ Store = (*content.Store)(nil)

// Runner executes RUN instructions. The container engine implements it.
type Runner interface {
	Run(ctx context.Context, req RunRequest) error
}

// RunRequest is one RUN instruction to execute.
type RunRequest struct {
	// Layers are the image's layers, bottom first, as compressed blobs in
	// the content store; DiffIDs are their uncompressed digests.
	Layers  []ocispec.Descriptor
	DiffIDs []digest.Digest
	// UpperDir is an empty directory: the runner mounts Layers as
	// overlayfs lowers with UpperDir as upper (or otherwise leaves in it
	// what the command changed, in overlayfs upper format). The builder
	// turns it into the step's layer.
	UpperDir string
	// Cmd is the full argv (the shell already prepended for shell form).
	Cmd     []string
	Env     []string
	User    string
	WorkDir string
	// Shell is the stage's shell, for information.
	Shell []string
	// Stdout and Stderr receive the command's output.
	Stdout, Stderr io.Writer
}

// Options describe one build.
type Options struct {
	// ContextDir is the build context. Required.
	ContextDir string
	// Dockerfile is the Dockerfile's path (relative paths are relative to
	// ContextDir; default "Dockerfile"). DockerfileBytes, if set, wins.
	Dockerfile      string
	DockerfileBytes []byte
	Tags            []string
	BuildArgs       map[string]string
	Target          string
	NoCache         bool
	// Platform like "linux/amd64"; default the machine's.
	Platform string
	// SourceDateEpoch, if set, fixes every timestamp (overrides the
	// SOURCE_DATE_EPOCH build arg).
	SourceDateEpoch *time.Time
	Quiet           bool
	// Progress receives the step-by-step output (nil: discarded).
	Progress io.Writer
}

// Builder builds images into a content store.
type Builder struct {
	store  Store
	runner Runner
}

// New returns a Builder writing to store; runner may be nil, in which case
// RUN fails with an error. New does no I/O.
func New(store Store, runner Runner) *Builder {
	return &Builder{store: store, runner: runner}
}

// Build runs the build described by opts and returns the image ID (the
// config digest). On error nothing is tagged.
func (b *Builder) Build(ctx context.Context, opts Options) (digest.Digest, error) {
	if opts.ContextDir == "" {
		return "", fmt.Errorf("build: no context directory: %w", ErrInvalid)
	}
	src := opts.DockerfileBytes
	if src == nil {
		p := opts.Dockerfile
		if p == "" {
			p = "Dockerfile"
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(opts.ContextDir, p)
		}
		var err error
		if src, err = os.ReadFile(p); err != nil {
			return "", fmt.Errorf("build: read Dockerfile: %w", err)
		}
	}
	df, err := parseDockerfile(src)
	if err != nil {
		return "", err
	}
	platform, err := parsePlatform(opts.Platform)
	if err != nil {
		return "", err
	}
	tags := make([]string, 0, len(opts.Tags))
	for _, t := range opts.Tags {
		n, err := NormalizeName(t)
		if err != nil {
			return "", fmt.Errorf("build: tag %q: %w", t, err)
		}
		tags = append(tags, n)
	}
	tmp, err := os.MkdirTemp("", "skiff-build-")
	if err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	defer os.RemoveAll(tmp)

	progress := opts.Progress
	if progress == nil || opts.Quiet {
		progress = io.Discard
	}
	bc := &buildCtx{
		b:        b,
		opts:     opts,
		df:       df,
		platform: platform,
		tmp:      tmp,
		out:      progress,
		cache:    &cache{store: b.store, disabled: opts.NoCache},
		stages:   map[string]*stageState{},
	}
	if opts.SourceDateEpoch != nil {
		t := opts.SourceDateEpoch.UTC()
		bc.epoch = &t
	} else if v, ok := opts.BuildArgs["SOURCE_DATE_EPOCH"]; ok && v != "" {
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", fmt.Errorf("build: SOURCE_DATE_EPOCH=%q: %w", v, ErrInvalid)
		}
		t := time.Unix(sec, 0).UTC()
		bc.epoch = &t
	}
	if err := bc.loadIgnore(); err != nil {
		return "", err
	}
	final, err := bc.run(ctx)
	if err != nil {
		return "", err
	}
	id, mdesc, err := bc.commitImage(ctx, final)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(bc.out, "Successfully built %s\n", shortID(id))
	for _, t := range tags {
		if err := b.store.SetRef(ctx, t, mdesc); err != nil {
			return "", fmt.Errorf("build: tag %s: %w", t, err)
		}
		fmt.Fprintf(bc.out, "Successfully tagged %s\n", t)
	}
	if opts.Quiet && opts.Progress != nil {
		fmt.Fprintln(opts.Progress, id)
	}
	return id, nil
}

func shortID(d digest.Digest) string {
	h := d.Encoded()
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

func parsePlatform(s string) (ocispec.Platform, error) {
	if s == "" {
		return ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return ocispec.Platform{}, fmt.Errorf("build: platform %q: want os/arch[/variant]: %w", s, ErrInvalid)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// stepError wraps an error from one instruction with its line.
func stepError(cmd instructions.Command, err error) error {
	line := 0
	if loc := cmd.Location(); len(loc) > 0 {
		line = loc[0].Start.Line
	}
	return fmt.Errorf("Dockerfile line %d: %s: %w", line, cmdText(cmd), err)
}

// cmdText is the instruction's source text.
func cmdText(cmd instructions.Command) string {
	if s, ok := cmd.(fmt.Stringer); ok {
		return strings.TrimSpace(s.String())
	}
	return strings.ToUpper(cmd.Name())
}
