package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"skiff.dev/skiff/internal/runtime/oci"
)

// Where a pod's volumes live: DataDir/pods/<uid>/volumes/<plugin>/<name>,
// with the kubelet's plugin directory names.
const (
	pluginEmptyDir  = "kubernetes.io~empty-dir"
	pluginConfigMap = "kubernetes.io~configmap"
	pluginSecret    = "kubernetes.io~secret"
	pluginDownward  = "kubernetes.io~downward-api"
	pluginProjected = "kubernetes.io~projected"
)

func (a *Agent) podDir(uid types.UID) string {
	return filepath.Join(a.opts.DataDir, "pods", string(uid))
}

func (a *Agent) makePodDirs(uid types.UID) error {
	for _, d := range []string{filepath.Join(a.podDir(uid), "volumes"), filepath.Join(a.podDir(uid), "containers")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return err
		}
	}
	return nil
}

// podDirs lists the UIDs of the pods with a directory under dataDir.
func podDirs(dataDir string) []types.UID {
	entries, _ := os.ReadDir(filepath.Join(dataDir, "pods"))
	var out []types.UID
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, types.UID(e.Name()))
		}
	}
	return out
}

// volumeDir is where a pod volume's contents live on the host ("" for a
// hostPath, which has none of its own).
func (a *Agent) volumeDir(pod *corev1.Pod, v *corev1.Volume) string {
	if dir, ok := a.meshVolumeDir(pod, v); ok {
		return dir
	}
	uid := pod.UID
	plugin := ""
	switch {
	case v.EmptyDir != nil:
		plugin = pluginEmptyDir
	case v.ConfigMap != nil:
		plugin = pluginConfigMap
	case v.Secret != nil:
		plugin = pluginSecret
	case v.DownwardAPI != nil:
		plugin = pluginDownward
	case v.Projected != nil:
		plugin = pluginProjected
	default:
		return ""
	}
	return filepath.Join(a.podDir(uid), "volumes", plugin, v.Name)
}

// setUpVolumes makes every volume of the pod ready to mount, and
// refreshes the files of configMap, secret, downwardAPI and projected
// volumes. A volume that cannot be set up gets a FailedMount event; the
// pod's containers wait.
func (a *Agent) setUpVolumes(ctx context.Context, pod *corev1.Pod) error {
	objs := newObjects(a.client, pod.Namespace)
	var errs []error
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if err := a.setUpVolume(ctx, pod, v, objs); err != nil {
			a.event(pod, "", corev1.EventTypeWarning, "FailedMount", "MountVolume.SetUp failed for volume %q : %v", v.Name, err)
			errs = append(errs, fmt.Errorf("volume %q: %w", v.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (a *Agent) setUpVolume(ctx context.Context, pod *corev1.Pod, v *corev1.Volume, objs *objects) error {
	if _, ok := a.meshVolumeDir(pod, v); ok {
		return nil // the Mesh made it
	}
	dir := a.volumeDir(pod, v)
	switch {
	case v.EmptyDir != nil:
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return err
		}
		if v.EmptyDir.Medium == corev1.StorageMediumMemory {
			if err := mountTmpfs(dir, a.emptyDirSize(pod, v.EmptyDir)); err != nil {
				return err
			}
		}
		return os.Chmod(dir, 0o777)
	case v.HostPath != nil:
		return checkHostPath(v.HostPath)
	case v.ConfigMap != nil, v.Secret != nil, v.DownwardAPI != nil, v.Projected != nil:
		payload, err := a.volumePayload(ctx, pod, v, objs)
		if err != nil {
			return err
		}
		if v.Secret != nil || v.Projected != nil {
			// Secrets never touch the disk.
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			if err := mountTmpfs(dir, 0); err != nil {
				return err
			}
		}
		wrote, err := writeProjection(dir, payload)
		if wrote {
			a.log.Debug("volume updated", "pod", pod.Namespace+"/"+pod.Name, "volume", v.Name)
		}
		return err
	case v.PersistentVolumeClaim != nil:
		return fmt.Errorf("persistentVolumeClaim volumes are not supported yet (claim %q)", v.PersistentVolumeClaim.ClaimName)
	case v.Ephemeral != nil:
		return errors.New("ephemeral volumes are not supported yet")
	}
	return errors.New("this volume type is not supported by Skiff's node agent")
}

// emptyDirSize is a memory-backed emptyDir's tmpfs size: its sizeLimit,
// else the pod's memory limit (sum of its containers'), else the node's
// allocatable memory.
func (a *Agent) emptyDirSize(pod *corev1.Pod, e *corev1.EmptyDirVolumeSource) int64 {
	if e.SizeLimit != nil && !e.SizeLimit.IsZero() {
		return e.SizeLimit.Value()
	}
	var total int64
	for _, c := range pod.Spec.Containers {
		q, ok := c.Resources.Limits[corev1.ResourceMemory]
		if !ok || q.IsZero() {
			total = 0
			break
		}
		total += q.Value()
	}
	if total > 0 {
		return total
	}
	if a.node != nil {
		return a.node.allocatable.Memory().Value()
	}
	return 0
}

// checkHostPath applies a hostPath's type: creating what *OrCreate asks
// for, refusing what is not of the type.
func checkHostPath(h *corev1.HostPathVolumeSource) error {
	p := h.Path
	typ := corev1.HostPathUnset
	if h.Type != nil {
		typ = *h.Type
	}
	fi, err := os.Stat(p)
	exists := err == nil
	switch typ {
	case corev1.HostPathUnset:
		return nil
	case corev1.HostPathDirectoryOrCreate:
		if !exists {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return fmt.Errorf("hostPath type check failed: %s: %w", p, err)
			}
			return nil
		}
		if !fi.IsDir() {
			return fmt.Errorf("hostPath type check failed: %s is not a directory", p)
		}
		return nil
	case corev1.HostPathFileOrCreate:
		if !exists {
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil && !os.IsExist(err) {
				return fmt.Errorf("hostPath type check failed: %s: %w", p, err)
			}
			if f != nil {
				f.Close()
			}
			return nil
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("hostPath type check failed: %s is not a file", p)
		}
		return nil
	case corev1.HostPathDirectory:
		if !exists || !fi.IsDir() {
			return fmt.Errorf("hostPath type check failed: %s is not a directory", p)
		}
	case corev1.HostPathFile:
		if !exists || !fi.Mode().IsRegular() {
			return fmt.Errorf("hostPath type check failed: %s is not a file", p)
		}
	case corev1.HostPathSocket:
		if !exists || fi.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("hostPath type check failed: %s is not a socket file", p)
		}
	case corev1.HostPathCharDev:
		if !exists || fi.Mode()&os.ModeCharDevice == 0 {
			return fmt.Errorf("hostPath type check failed: %s is not a character device", p)
		}
	case corev1.HostPathBlockDev:
		if !exists || fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0 {
			return fmt.Errorf("hostPath type check failed: %s is not a block device", p)
		}
	default:
		return fmt.Errorf("hostPath type %q is not supported", typ)
	}
	return nil
}

// containerMounts are the binds of a container's volumeMounts.
func (a *Agent) containerMounts(pod *corev1.Pod, c *corev1.Container, env []envVar) ([]oci.Mount, error) {
	var out []oci.Mount
	for _, m := range c.VolumeMounts {
		v := podVolume(pod, m.Name)
		if v == nil {
			return nil, fmt.Errorf("cannot find volume %q to mount into container %q", m.Name, c.Name)
		}
		src := a.volumeDir(pod, v)
		readOnly := m.ReadOnly
		switch {
		case v.HostPath != nil:
			src = v.HostPath.Path
		case v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.Projected != nil:
			readOnly = true // as the kubelet mounts them
		case src == "":
			return nil, fmt.Errorf("volume %q cannot be mounted", m.Name)
		}
		sub := m.SubPath
		if m.SubPathExpr != "" {
			vars := map[string]string{}
			for _, e := range env {
				vars[e.Name] = e.Value
			}
			sub = expand(m.SubPathExpr, lookupIn(vars))
			if strings.Contains(sub, "$(") {
				return nil, fmt.Errorf("failed to expand subPathExpr %q of volume mount %q", m.SubPathExpr, m.Name)
			}
		}
		if sub != "" {
			if filepath.IsAbs(sub) {
				return nil, fmt.Errorf("error SubPath `%s` must not be an absolute path", sub)
			}
			for _, el := range strings.Split(filepath.ToSlash(sub), "/") {
				if el == ".." {
					return nil, fmt.Errorf("unable to provision SubPath `%s`: must not contain '..'", sub)
				}
			}
			src = filepath.Join(src, sub)
			if _, err := os.Lstat(src); os.IsNotExist(err) {
				if err := os.MkdirAll(src, 0o755); err != nil {
					return nil, fmt.Errorf("failed to create subPath directory for volumeMount %q of container %q", m.Name, c.Name)
				}
			}
		}
		mount := oci.Mount{Destination: m.MountPath, Source: src, Type: "bind", ReadOnly: readOnly}
		if m.MountPropagation != nil {
			switch *m.MountPropagation {
			case corev1.MountPropagationHostToContainer:
				mount.Options = append(mount.Options, "rslave")
			case corev1.MountPropagationBidirectional:
				mount.Options = append(mount.Options, "rshared")
			}
		}
		out = append(out, mount)
	}
	return out, nil
}

func podVolume(pod *corev1.Pod, name string) *corev1.Volume {
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == name {
			return &pod.Spec.Volumes[i]
		}
	}
	return nil
}

// mountTmpfs mounts a tmpfs at dir unless one is mounted there already.
// size 0 is tmpfs's default (half the RAM).
func mountTmpfs(dir string, size int64) error {
	if isMountPoint(dir) {
		return nil
	}
	opts := "mode=0755"
	if size > 0 {
		opts += ",size=" + strconv.FormatInt(size, 10)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return nil
}

// isMountPoint reports whether dir is on another filesystem than its
// parent.
func isMountPoint(dir string) bool {
	var st, parent unix.Stat_t
	if unix.Lstat(dir, &st) != nil || unix.Lstat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}

// tearDownPodDir unmounts the pod's tmpfs volumes and removes its
// directory. It refuses to remove anything while a mount remains under
// it.
func (a *Agent) tearDownPodDir(uid types.UID) error {
	dir := a.podDir(uid)
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return nil
	}
	if err := unmountUnder(dir); err != nil {
		return err
	}
	if left := mountsUnder(dir); len(left) > 0 {
		return fmt.Errorf("pod directory %s still has mounts: %v", dir, left)
	}
	return os.RemoveAll(dir)
}

// unmountUnder lazily unmounts every mount at or below dir, deepest
// first.
func unmountUnder(dir string) error {
	var errs []error
	for _, m := range mountsUnder(dir) {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
