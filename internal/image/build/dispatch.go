package build

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// buildCtx is the state of one Build call.
type buildCtx struct {
	b        *Builder
	opts     Options
	df       *dockerfile
	platform ocispec.Platform
	epoch    *time.Time
	tmp      string
	out      io.Writer
	cache    *cache
	ignore   *patternmatcher.PatternMatcher
	stages   map[string]*stageState // by name and by index ("0", "1", ...)
	meta     envMap                 // ARGs before the first FROM
	step     int
}

// stageState is a stage being built.
type stageState struct {
	st      *imageState
	key     digest.Digest
	args    map[string]string // ARGs declared in the stage, with values
	cmdSet  bool              // CMD set in this stage
	rootDir string            // materialized rootfs (for COPY --from), lazily
	index   *fsIndex          // lazily
}

// envMap is a shell.EnvGetter over a map.
type envMap map[string]string

func (e envMap) Get(k string) (string, bool) { v, ok := e[k]; return v, ok }
func (e envMap) Keys() []string              { return slices.Sorted(maps.Keys(e)) }

func (bc *buildCtx) now() time.Time {
	if bc.epoch != nil {
		return *bc.epoch
	}
	return time.Now().UTC()
}

func (bc *buildCtx) run(ctx context.Context) (*imageState, error) {
	lex := shell.NewLex(bc.df.escape)
	// Meta ARGs (before the first FROM) are visible to FROM lines and, when
	// re-declared, inside stages.
	meta := envMap{}
	for _, a := range bc.df.metaArgs {
		for _, kv := range a.Args {
			if v, ok := bc.opts.BuildArgs[kv.Key]; ok {
				meta[kv.Key] = v
			} else if kv.Value != nil {
				v, _, err := lex.ProcessWord(*kv.Value, meta)
				if err != nil {
					return nil, stepError(&a, err)
				}
				meta[kv.Key] = v
			} else {
				meta[kv.Key] = ""
			}
		}
	}
	bc.meta = meta
	last := len(bc.df.stages) - 1
	if bc.opts.Target != "" {
		i, ok := instructions.HasStage(bc.df.stages, bc.opts.Target)
		if !ok {
			return nil, fmt.Errorf("build: target stage %q: %w", bc.opts.Target, ErrNotFound)
		}
		last = i
	}
	total := 0
	for _, s := range bc.df.stages[:last+1] {
		total += 1 + len(s.Commands)
	}
	var cur *stageState
	for i := 0; i <= last; i++ {
		s := bc.df.stages[i]
		bc.step++
		fmt.Fprintf(bc.out, "Step %d/%d : %s\n", bc.step, total, s.SourceCode)
		var err error
		cur, err = bc.from(ctx, &s, meta, lex)
		if err != nil {
			return nil, fmt.Errorf("Dockerfile line %d: %s: %w", line(s.Location), s.SourceCode, err)
		}
		fmt.Fprintf(bc.out, " ---> %s\n", shortID(digest.FromString(string(cur.key))))
		// ONBUILD triggers of the base run right after FROM.
		if trig := cur.st.Image.Config.OnBuild; len(trig) > 0 {
			cur.st.Image.Config.OnBuild = nil
			fmt.Fprintf(bc.out, " # Executing %d build trigger(s)\n", len(trig))
			for _, t := range trig {
				cmd, err := parseTrigger(t)
				if err != nil {
					return nil, fmt.Errorf("Dockerfile line %d: ONBUILD trigger %q: %w", line(s.Location), t, err)
				}
				if err := bc.dispatch(ctx, cur, cmd, lex); err != nil {
					return nil, fmt.Errorf("ONBUILD trigger %q: %w", t, err)
				}
			}
		}
		for _, cmd := range s.Commands {
			bc.step++
			fmt.Fprintf(bc.out, "Step %d/%d : %s\n", bc.step, total, cmdText(cmd))
			if err := bc.dispatch(ctx, cur, cmd, lex); err != nil {
				return nil, stepError(cmd, err)
			}
		}
		bc.stages[fmt.Sprint(i)] = cur
		if s.Name != "" {
			bc.stages[strings.ToLower(s.Name)] = cur
		}
	}
	return cur.st, nil
}

func line(loc []parser.Range) int {
	if len(loc) > 0 {
		return loc[0].Start.Line
	}
	return 0
}

func parseTrigger(expr string) (instructions.Command, error) {
	res, err := parser.Parse(strings.NewReader(expr))
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalid)
	}
	if len(res.AST.Children) != 1 {
		return nil, fmt.Errorf("want one instruction: %w", ErrInvalid)
	}
	cmd, err := instructions.ParseCommand(res.AST.Children[0])
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalid)
	}
	return cmd, nil
}

func (bc *buildCtx) from(ctx context.Context, s *instructions.Stage, meta envMap, lex *shell.Lex) (*stageState, error) {
	base, _, err := lex.ProcessWord(s.BaseName, meta)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalid)
	}
	if base == "" {
		return nil, fmt.Errorf("base name (%s) should not be blank: %w", s.BaseName, ErrInvalid)
	}
	platform := bc.platform
	if s.Platform != "" {
		pv, _, err := lex.ProcessWord(s.Platform, meta)
		if err != nil {
			return nil, fmt.Errorf("%v: %w", err, ErrInvalid)
		}
		if platform, err = parsePlatform(pv); err != nil {
			return nil, err
		}
	}
	ss := &stageState{args: map[string]string{}}
	switch prev, ok := bc.stages[strings.ToLower(base)]; {
	case ok:
		ss.st = prev.st.clone()
		ss.key = chainKey(prev.key, "FROM stage")
	case strings.EqualFold(base, "scratch"):
		ss.st = scratchImage(platform)
		ss.key = chainKey("", "FROM scratch", platform.OS, platform.Architecture, platform.Variant)
	default:
		st, mdig, err := bc.b.loadImage(ctx, base, platform)
		if err != nil {
			return nil, err
		}
		ss.st = st
		ss.key = chainKey("", "FROM", string(mdig))
	}
	return ss, nil
}

// env is the expansion environment of a stage: its ARGs, then its ENV.
func (ss *stageState) env() envMap {
	e := envMap{}
	maps.Copy(e, ss.args)
	for _, kv := range ss.st.Image.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		e[k] = v
	}
	return e
}

// argParts lists the stage's ARG values for cache keys (Docker keys on the
// build args a step can see).
func (ss *stageState) argParts() string {
	keys := slices.Sorted(maps.Keys(ss.args))
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, ss.args[k])
	}
	return b.String()
}

// dispatch applies one instruction to ss.
func (bc *buildCtx) dispatch(ctx context.Context, ss *stageState, cmd instructions.Command, lex *shell.Lex) error {
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		env := ss.env()
		err := ex.Expand(func(w string) (string, error) {
			r, _, err := lex.ProcessWord(w, env)
			return r, err
		})
		if err != nil {
			return fmt.Errorf("%v: %w", err, ErrInvalid)
		}
	}
	if a, ok := cmd.(*instructions.ArgCommand); ok {
		// ARG changes the environment of later steps, not the image.
		for _, kv := range a.Args {
			switch v, ok := bc.opts.BuildArgs[kv.Key]; {
			case ok:
				ss.args[kv.Key] = v
			case kv.Value != nil:
				ss.args[kv.Key] = *kv.Value
			case bc.meta[kv.Key] != "":
				ss.args[kv.Key] = bc.meta[kv.Key]
			default:
				ss.args[kv.Key] = ""
			}
		}
		fmt.Fprintf(bc.out, " ---> %s\n", shortID(digest.FromString(string(ss.key))))
		return nil
	}

	text := cmdText(cmd)
	switch c := cmd.(type) {
	case *instructions.CopyCommand, *instructions.AddCommand, *instructions.RunCommand, *instructions.WorkdirCommand:
		return bc.layerStep(ctx, ss, c, text)
	}
	key := chainKey(ss.key, text, ss.argParts())
	if hit := bc.cache.get(ctx, key); hit != nil {
		ss.st, ss.key = hit, key
		if _, ok := cmd.(*instructions.CmdCommand); ok {
			ss.cmdSet = true
		}
		fmt.Fprintf(bc.out, " ---> Using cache\n ---> %s\n", shortID(digest.FromString(string(key))))
		return nil
	}
	cfg := &ss.st.Image.Config
	createdBy := text
	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.MaintainerCommand:
		ss.st.Image.Author = c.Maintainer
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.ExposeCommand:
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		env := ss.env()
		for _, p := range c.Ports {
			pv, _, err := lex.ProcessWord(p, env)
			if err != nil {
				return fmt.Errorf("%v: %w", err, ErrInvalid)
			}
			ports, err := parsePorts(pv)
			if err != nil {
				return err
			}
			for _, p := range ports {
				cfg.ExposedPorts[p] = struct{}{}
			}
		}
		ps := slices.Sorted(maps.Keys(cfg.ExposedPorts))
		createdBy = "EXPOSE map[" + strings.Join(suffixAll(ps, ":{}"), " ") + "]"
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if strings.TrimSpace(v) == "" {
				return fmt.Errorf("VOLUME specified can not be an empty string: %w", ErrInvalid)
			}
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.CmdCommand:
		cfg.Cmd = withShell(c.ShellDependantCmdLine, ss.shell())
		ss.cmdSet = true
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = withShell(c.ShellDependantCmdLine, ss.shell())
		if !ss.cmdSet {
			cfg.Cmd = nil
		}
	case *instructions.HealthCheckCommand:
		h := *c.Health
		cfg.Healthcheck = &h
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
	case *instructions.ShellCommand:
		cfg.Shell = slices.Clone(c.Shell)
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, strings.TrimSpace(c.Expression))
	default:
		return fmt.Errorf("instruction %s is not supported: %w", strings.ToUpper(cmd.Name()), ErrInvalid)
	}
	bc.addHistory(ss, createdBy, true)
	ss.key = key
	bc.cache.put(key, ss.st)
	fmt.Fprintf(bc.out, " ---> %s\n", shortID(digest.FromString(string(key))))
	return nil
}

func suffixAll(ss []string, suf string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s + suf
	}
	return out
}

// parsePorts turns "80", "80/udp", "8000-8002/tcp" into "80/tcp" etc.
func parsePorts(p string) ([]string, error) {
	num, proto, _ := strings.Cut(p, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	lo, hi, isRange := strings.Cut(num, "-")
	var a, z int
	if _, err := fmt.Sscanf(lo, "%d", &a); err != nil || a < 0 || a > 65535 {
		return nil, fmt.Errorf("invalid port %q: %w", p, ErrInvalid)
	}
	z = a
	if isRange {
		if _, err := fmt.Sscanf(hi, "%d", &z); err != nil || z < a || z > 65535 {
			return nil, fmt.Errorf("invalid port range %q: %w", p, ErrInvalid)
		}
	}
	var out []string
	for i := a; i <= z; i++ {
		out = append(out, fmt.Sprintf("%d/%s", i, proto))
	}
	return out, nil
}

func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if ek, _, _ := strings.Cut(kv, "="); ek == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

func (ss *stageState) shell() []string {
	if sh := ss.st.Image.Config.Shell; len(sh) > 0 {
		return sh
	}
	return []string{"/bin/sh", "-c"}
}

func withShell(c instructions.ShellDependantCmdLine, sh []string) []string {
	if c.CmdLine == nil {
		return nil
	}
	if c.PrependShell {
		return append(slices.Clone(sh), strings.Join(c.CmdLine, " "))
	}
	return slices.Clone(c.CmdLine)
}

func (bc *buildCtx) addHistory(ss *stageState, createdBy string, empty bool) {
	t := bc.now()
	ss.st.Image.Created = &t
	ss.st.Image.History = append(ss.st.Image.History, ocispec.History{
		Created:    &t,
		CreatedBy:  createdBy,
		Comment:    historyComment,
		EmptyLayer: empty,
	})
}

// sortedEnv is the stage's RUN environment: ENV plus ARGs not shadowed.
func (ss *stageState) runEnv() []string {
	env := slices.Clone(ss.st.Image.Config.Env)
	have := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		have[k] = true
	}
	var extra []string
	for k, v := range ss.args {
		if !have[k] {
			extra = append(extra, k+"="+v)
		}
	}
	sort.Strings(extra)
	return append(env, extra...)
}
