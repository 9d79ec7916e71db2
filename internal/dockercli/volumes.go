package dockercli

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/mount"
)

// VolumeSpec is one parsed -v/--volume value.
type VolumeSpec struct {
	// Type is bind (Source is an absolute host path), volume (Source is
	// a volume name) or, with Source empty, an anonymous volume.
	Type     mount.Type
	Source   string
	Target   string
	ReadOnly bool
	// Mode is the options part as given (e.g. "ro,z"), "" if none.
	Mode string
}

// Bind is the value for HostConfig.Binds; anonymous volumes have none
// (they go in Config.Volumes).
func (v VolumeSpec) Bind() string {
	if v.Source == "" {
		return ""
	}
	s := v.Source + ":" + v.Target
	if v.Mode != "" {
		s += ":" + v.Mode
	}
	return s
}

var volumeNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ParseVolume parses a -v value the way the engine will on Linux:
// /container/path (anonymous volume), NAME:/path (named volume) or
// /host/path:/path (bind), each with an optional :MODE list (ro, rw, z, Z,
// nocopy, propagation, consistency). Relative host paths starting with "."
// are made absolute against the working directory.
func ParseVolume(spec string) (VolumeSpec, error) {
	invalid := fmt.Errorf("invalid volume specification: '%s'", spec)
	if spec == "" {
		return VolumeSpec{}, errors.New("invalid empty volume spec")
	}
	parts := strings.Split(spec, ":")
	for _, p := range parts {
		if p == "" {
			return VolumeSpec{}, fmt.Errorf("invalid spec: %s: empty section between colons", spec)
		}
	}
	var v VolumeSpec
	switch len(parts) {
	case 1:
		v.Target = parts[0]
	case 2:
		if validMountMode(parts[1]) {
			// a destination with a mode is not a volume (/foo:ro)
			return VolumeSpec{}, invalid
		}
		v.Source, v.Target = parts[0], parts[1]
	case 3:
		v.Source, v.Target, v.Mode = parts[0], parts[1], parts[2]
		if !validMountMode(v.Mode) {
			return VolumeSpec{}, fmt.Errorf("invalid mode: %s", v.Mode)
		}
	default:
		return VolumeSpec{}, invalid
	}

	switch {
	case v.Source == "":
		v.Type = mount.TypeVolume
	case strings.HasPrefix(v.Source, "."):
		abs, err := filepath.Abs(v.Source)
		if err != nil {
			return VolumeSpec{}, err
		}
		v.Source, v.Type = abs, mount.TypeBind
	case path.IsAbs(v.Source):
		v.Type = mount.TypeBind
	default:
		v.Type = mount.TypeVolume
	}
	if !path.IsAbs(v.Target) {
		return VolumeSpec{}, fmt.Errorf("%s: invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute", invalid, v.Type, v.Target)
	}
	if path.Clean(v.Target) == "/" {
		return VolumeSpec{}, fmt.Errorf("%s: invalid specification: destination can't be '/'", invalid)
	}
	if v.Type == mount.TypeVolume && v.Source != "" && !volumeNameRE.MatchString(v.Source) {
		return VolumeSpec{}, fmt.Errorf("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", v.Source)
	}
	for _, m := range strings.Split(v.Mode, ",") {
		switch m {
		case "ro":
			v.ReadOnly = true
		case "rw":
			v.ReadOnly = false
		}
	}
	return v, nil
}

// validMountMode reports whether mode is a comma-separated list of volume
// options with at most one of each kind.
func validMountMode(mode string) bool {
	if mode == "" {
		return true
	}
	kinds := map[string]string{
		"rw": "rw", "ro": "rw",
		"z": "label", "Z": "label",
		"nocopy":  "copy",
		"private": "propagation", "rprivate": "propagation", "shared": "propagation",
		"rshared": "propagation", "slave": "propagation", "rslave": "propagation",
		"consistent": "consistency", "cached": "consistency", "delegated": "consistency",
	}
	seen := map[string]bool{}
	for _, o := range strings.Split(mode, ",") {
		kind, ok := kinds[o]
		if !ok || seen[kind] {
			return false
		}
		seen[kind] = true
	}
	return true
}

// ParseMount parses a --mount value: comma-separated key=value fields
// type (bind, volume, tmpfs; default volume), source/src,
// target/dst/destination, readonly/ro, bind-propagation, volume-nocopy,
// volume-label, volume-opt, volume-subpath, tmpfs-size and tmpfs-mode.
func ParseMount(value string) (mount.Mount, error) {
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return mount.Mount{}, err
	}
	m := mount.Mount{Type: mount.TypeVolume}
	volumeOptions := func() *mount.VolumeOptions {
		if m.VolumeOptions == nil {
			m.VolumeOptions = &mount.VolumeOptions{}
		}
		return m.VolumeOptions
	}
	for _, field := range fields {
		key, val, hasValue := strings.Cut(field, "=")
		key = strings.ToLower(key)
		if !hasValue {
			switch key {
			case "readonly", "ro":
				m.ReadOnly = true
			case "volume-nocopy":
				volumeOptions().NoCopy = true
			default:
				return mount.Mount{}, fmt.Errorf("invalid field '%s' must be a key=value pair", field)
			}
			continue
		}
		switch key {
		case "type":
			m.Type = mount.Type(strings.ToLower(val))
		case "source", "src":
			m.Source = val
			if strings.HasPrefix(val, ".") {
				if abs, err := filepath.Abs(val); err == nil {
					m.Source = abs
				}
			}
		case "target", "dst", "destination":
			m.Target = val
		case "readonly", "ro":
			if m.ReadOnly, err = strconv.ParseBool(val); err != nil {
				return mount.Mount{}, fmt.Errorf("invalid value for %s: %s", key, val)
			}
		case "bind-propagation":
			if m.BindOptions == nil {
				m.BindOptions = &mount.BindOptions{}
			}
			m.BindOptions.Propagation = mount.Propagation(strings.ToLower(val))
		case "volume-nocopy":
			if volumeOptions().NoCopy, err = strconv.ParseBool(val); err != nil {
				return mount.Mount{}, fmt.Errorf("invalid value for volume-nocopy: %s", val)
			}
		case "volume-subpath":
			volumeOptions().Subpath = val
		case "volume-label":
			vo := volumeOptions()
			if vo.Labels == nil {
				vo.Labels = map[string]string{}
			}
			k, v, _ := strings.Cut(val, "=")
			vo.Labels[k] = v
		case "volume-opt":
			vo := volumeOptions()
			if vo.DriverConfig == nil {
				vo.DriverConfig = &mount.Driver{Options: map[string]string{}}
			}
			k, v, _ := strings.Cut(val, "=")
			vo.DriverConfig.Options[k] = v
		case "tmpfs-size":
			size, err := units.RAMInBytes(val)
			if err != nil {
				return mount.Mount{}, fmt.Errorf("invalid value for %s: %s", key, val)
			}
			if m.TmpfsOptions == nil {
				m.TmpfsOptions = &mount.TmpfsOptions{}
			}
			m.TmpfsOptions.SizeBytes = size
		case "tmpfs-mode":
			mode, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return mount.Mount{}, fmt.Errorf("invalid value for %s: %s", key, val)
			}
			if m.TmpfsOptions == nil {
				m.TmpfsOptions = &mount.TmpfsOptions{}
			}
			m.TmpfsOptions.Mode = os.FileMode(mode)
		default:
			return mount.Mount{}, fmt.Errorf("unexpected key '%s' in '%s'", key, field)
		}
	}
	if m.Type == "" {
		return mount.Mount{}, errors.New("type is required")
	}
	if m.Target == "" {
		return mount.Mount{}, errors.New("target is required")
	}
	switch m.Type {
	case mount.TypeBind, mount.TypeVolume, mount.TypeTmpfs:
	default:
		return mount.Mount{}, fmt.Errorf("mount type %q is not supported (use bind, volume or tmpfs)", m.Type)
	}
	if !path.IsAbs(m.Target) {
		return mount.Mount{}, fmt.Errorf("invalid mount path: '%s' mount path must be absolute", m.Target)
	}
	if m.Type == mount.TypeBind && m.Source == "" {
		return mount.Mount{}, errors.New("source is required when specifying bind mounts")
	}
	if m.Type == mount.TypeTmpfs && m.Source != "" {
		return mount.Mount{}, errors.New("source must not be specified for tmpfs mounts")
	}
	for _, o := range []struct {
		set  bool
		kind mount.Type
	}{
		{m.VolumeOptions != nil, mount.TypeVolume},
		{m.BindOptions != nil, mount.TypeBind},
		{m.TmpfsOptions != nil, mount.TypeTmpfs},
	} {
		if o.set && m.Type != o.kind {
			return mount.Mount{}, fmt.Errorf("cannot mix '%s-*' options with mount type '%s'", o.kind, m.Type)
		}
	}
	return m, nil
}

// ParseTmpfs parses a --tmpfs value: /path[:options].
func ParseTmpfs(value string) (target, options string, err error) {
	target, options, _ = strings.Cut(value, ":")
	if !path.IsAbs(target) {
		return "", "", fmt.Errorf("invalid mount path: '%s' mount path must be absolute", target)
	}
	return target, options, nil
}
