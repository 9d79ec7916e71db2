package dockerapitest

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/errdefs"
)

// archiveManifest is one entry of a docker-archive's manifest.json.
type archiveManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// ImageSave implements dockerapi.Backend: a docker-archive with each
// image's config and no layers.
func (b *Backend) ImageSave(_ context.Context, names []string, w io.Writer) error {
	b.mu.Lock()
	type entry struct {
		img  *fakeImage
		tags []string
	}
	var entries []entry
	for _, n := range names {
		img, err := b.image(n)
		if err != nil {
			b.mu.Unlock()
			return err
		}
		var tags []string
		if t, err := normalize(n); err == nil && b.tags[t] == img.id {
			tags = []string{t}
		}
		entries = append(entries, entry{img, tags})
	}
	b.mu.Unlock()

	tw := tar.NewWriter(w)
	var manifest []archiveManifest
	for _, e := range entries {
		blob, err := json.Marshal(map[string]any{"config": e.img.config, "comment": e.img.comment, "author": e.img.author})
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(e.img.id, "sha256:") + ".json"
		if err := writeTarFile(tw, name, blob); err != nil {
			return err
		}
		manifest = append(manifest, archiveManifest{Config: name, RepoTags: e.tags, Layers: []string{}})
	}
	blob, _ := json.Marshal(manifest)
	if err := writeTarFile(tw, "manifest.json", blob); err != nil {
		return err
	}
	return tw.Close()
}

func writeTarFile(tw *tar.Writer, name string, body []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
		return err
	}
	_, err := tw.Write(body)
	return err
}

// ImageLoad implements dockerapi.Backend for archives ImageSave wrote.
func (b *Backend) ImageLoad(_ context.Context, r io.Reader, progress io.Writer) ([]string, error) {
	files, err := readTar(r, 16<<20)
	if err != nil {
		return nil, err
	}
	var manifest []archiveManifest
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		return nil, errf(errdefs.ErrInvalid, "invalid archive: no usable manifest.json")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var loaded []string
	for _, m := range manifest {
		var cfg struct {
			Config          container.Config `json:"config"`
			Comment, Author string
		}
		if err := json.Unmarshal(files[m.Config], &cfg); err != nil {
			return nil, errf(errdefs.ErrInvalid, "invalid archive: config %s: %v", m.Config, err)
		}
		img := b.addImage(&cfg.Config, cfg.Comment, cfg.Author)
		fmt.Fprintf(progress, "Loading %s\n", shortID(img.id))
		b.emit(events.ImageEventType, events.ActionLoad, img.id, nil)
		if len(m.RepoTags) == 0 {
			loaded = append(loaded, img.id)
		}
		for _, t := range m.RepoTags {
			if err := b.tag(img, t); err != nil {
				return nil, err
			}
			loaded = append(loaded, t)
		}
	}
	return loaded, nil
}

// readTar reads the regular files of a tar (up to max bytes in all).
func readTar(r io.Reader, max int64) (map[string][]byte, error) {
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, errf(errdefs.ErrInvalid, "invalid tar archive: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		total += h.Size
		if total > max {
			return nil, errf(errdefs.ErrInvalid, "archive too large for the fake backend")
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return nil, errf(errdefs.ErrInvalid, "invalid tar archive: %v", err)
		}
		files[path.Clean(h.Name)] = body
	}
}

// ImageBuild implements dockerapi.Backend. It reads the Dockerfile from
// the context and applies FROM, CMD, ENTRYPOINT, ENV, LABEL, WORKDIR,
// USER; RUN steps do not run (a RUN of `false` or `exit N` fails) and
// COPY/ADD check that their sources exist.
func (b *Backend) ImageBuild(ctx context.Context, buildContext io.Reader, opts dockerapi.BuildOptions, progress io.Writer) (string, error) {
	files, err := readTar(buildContext, 64<<20)
	if err != nil {
		return "", err
	}
	name := opts.Dockerfile
	if name == "" {
		name = "Dockerfile"
	}
	df, ok := files[path.Clean(name)]
	if !ok {
		return "", errf(errdefs.ErrInvalid, "Cannot locate specified Dockerfile: %s", name)
	}
	steps := dockerfileSteps(string(df))
	if len(steps) == 0 || !strings.EqualFold(strings.Fields(steps[0])[0], "FROM") {
		return "", errf(errdefs.ErrInvalid, "the Dockerfile must begin with a FROM instruction")
	}
	var cfg container.Config
	for i, step := range steps {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		fmt.Fprintf(progress, "Step %d/%d : %s\n", i+1, len(steps), step)
		instr, rest, _ := strings.Cut(step, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			base := strings.Fields(rest)[0]
			if base == "scratch" {
				cfg = container.Config{}
				break
			}
			b.mu.Lock()
			img, err := b.image(base)
			b.mu.Unlock()
			if err != nil {
				return "", err
			}
			cfg = *img.config
			cfg.Labels = maps.Clone(cfg.Labels)
			fmt.Fprintf(progress, " ---> %s\n", shortID(img.id))
		case "RUN":
			fmt.Fprintf(progress, " ---> Running in %s\n", shortID(randomID()))
			if code := runStepExit(rest); code != 0 {
				return "", errf(errdefs.ErrInvalid, "The command '/bin/sh -c %s' returned a non-zero code: %d", rest, code)
			}
		case "COPY", "ADD":
			args := strings.Fields(rest)
			for _, src := range args[:max(0, len(args)-1)] {
				if strings.HasPrefix(src, "--") {
					continue
				}
				if _, ok := files[path.Clean(src)]; !ok && src != "." {
					return "", errf(errdefs.ErrInvalid, "COPY failed: file not found in build context or excluded by .dockerignore: stat %s: file does not exist", src)
				}
			}
		default:
			if err := applyInstruction(&cfg, step); err != nil {
				return "", err
			}
		}
	}
	if len(opts.Labels) > 0 {
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		maps.Copy(cfg.Labels, opts.Labels)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	img := b.addImage(&cfg, "", "")
	fmt.Fprintf(progress, " ---> %s\n", shortID(img.id))
	for _, t := range opts.Tags {
		if err := b.tag(img, t); err != nil {
			return "", err
		}
	}
	return img.id, nil
}

// dockerfileSteps returns the Dockerfile's instructions, continuation
// lines joined, comments and blank lines dropped.
func dockerfileSteps(df string) []string {
	var steps []string
	var cur strings.Builder
	for _, line := range strings.Split(df, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") || line == "" && cur.Len() == 0 {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		if s := strings.TrimSpace(cur.String()); s != "" {
			steps = append(steps, s)
		}
		cur.Reset()
	}
	return steps
}

func runStepExit(cmd string) int {
	words := strings.Fields(cmd)
	switch {
	case len(words) == 1 && words[0] == "false":
		return 1
	case len(words) == 2 && words[0] == "exit":
		var n int
		_, _ = fmt.Sscanf(words[1], "%d", &n)
		return n
	}
	return 0
}

// applyInstruction applies a Dockerfile instruction that only changes
// the config (also used for commit's changes).
func applyInstruction(cfg *container.Config, instruction string) error {
	instr, rest, _ := strings.Cut(strings.TrimSpace(instruction), " ")
	rest = strings.TrimSpace(rest)
	cmdForm := func() []string {
		var argv []string
		if json.Unmarshal([]byte(rest), &argv) == nil {
			return argv
		}
		return []string{"/bin/sh", "-c", rest}
	}
	switch strings.ToUpper(instr) {
	case "CMD":
		cfg.Cmd = cmdForm()
	case "ENTRYPOINT":
		cfg.Entrypoint = cmdForm()
	case "ENV":
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			k, v, _ = strings.Cut(rest, " ")
		}
		cfg.Env = append(cfg.Env, strings.TrimSpace(k)+"="+strings.Trim(strings.TrimSpace(v), `"`))
	case "LABEL":
		k, v, _ := strings.Cut(rest, "=")
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		cfg.Labels[strings.Trim(k, `"`)] = strings.Trim(v, `"`)
	case "WORKDIR":
		cfg.WorkingDir = rest
	case "USER":
		cfg.User = rest
	case "EXPOSE", "VOLUME", "STOPSIGNAL", "ARG", "MAINTAINER", "HEALTHCHECK", "SHELL", "ONBUILD":
		// recorded by real engines; nothing the fake needs
	default:
		return errf(errdefs.ErrInvalid, "unknown instruction: %s", strings.ToUpper(instr))
	}
	return nil
}
