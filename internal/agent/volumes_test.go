package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/runtime/oci"
)

func TestVolumes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("secret, projected and memory emptyDir volumes are tmpfs mounts: run as root")
	}
	env := newEnv(t)
	n := startNode(t, env)
	ctx := t.Context()
	if _, err := env.Client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"app.conf": "v1", "other": "x"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "sec"}, Data: map[string][]byte{"token": []byte("t0ken")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hostDir := filepath.Join(t.TempDir(), "made")
	dirOrCreate := corev1.HostPathDirectoryOrCreate
	size := resource.MustParse("16Mi")
	mode := int32(0o400)
	p := pod("vols", corev1.Container{Name: "app", Image: "busybox:1", VolumeMounts: []corev1.VolumeMount{
		{Name: "cfg", MountPath: "/etc/app"},
		{Name: "sec", MountPath: "/secrets"},
		{Name: "scratch", MountPath: "/scratch"},
		{Name: "mem", MountPath: "/dev/shm2"},
		{Name: "host", MountPath: "/host", ReadOnly: true},
		{Name: "info", MountPath: "/info"},
		{Name: "scratch", MountPath: "/logs", SubPathExpr: "$(POD_NAME)"},
	}, Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}}})
	p.Spec.Volumes = []corev1.Volume{
		{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"},
			Items: []corev1.KeyToPath{{Key: "app.conf", Path: "app.conf"}}}}},
		{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec", DefaultMode: &mode}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &size}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir, Type: &dirOrCreate}}},
		{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}}},
	}
	p.Labels = map[string]string{"app": "vols"}
	p = create(t, env.Client, p)
	waitPod(t, env.Client, "vols", "ready", ready)

	cfg, _ := n.rt.Config(string(p.UID), "app")
	mounts := map[string]oci.Mount{}
	for _, m := range cfg.Mounts {
		mounts[m.Destination] = m
	}
	read := func(dst, file string) string {
		b, err := os.ReadFile(filepath.Join(mounts[dst].Source, file))
		if err != nil {
			t.Fatalf("%s/%s: %v", dst, file, err)
		}
		return string(b)
	}
	if got := read("/etc/app", "app.conf"); got != "v1" || !mounts["/etc/app"].ReadOnly {
		t.Errorf("configMap file %q, mount %+v", got, mounts["/etc/app"])
	}
	if _, err := os.Stat(filepath.Join(mounts["/etc/app"].Source, "other")); !os.IsNotExist(err) {
		t.Error("a key not in items was projected")
	}
	if got := read("/secrets", "token"); got != "t0ken" {
		t.Errorf("secret %q", got)
	}
	if fi, _ := os.Stat(filepath.Join(mounts["/secrets"].Source, "token")); fi.Mode().Perm() != 0o400 {
		t.Errorf("secret mode %v", fi.Mode())
	}
	for _, dst := range []string{"/secrets", "/dev/shm2"} {
		var st unix.Statfs_t
		if err := unix.Statfs(mounts[dst].Source, &st); err != nil || st.Type != unix.TMPFS_MAGIC {
			t.Errorf("%s is not on tmpfs (%v)", dst, err)
		}
	}
	var st unix.Statfs_t
	unix.Statfs(mounts["/dev/shm2"].Source, &st)
	if total := int64(st.Blocks) * st.Bsize; total != 16<<20 {
		t.Errorf("memory emptyDir size %d, want 16Mi", total)
	}
	if fi, err := os.Stat(hostDir); err != nil || !fi.IsDir() || mounts["/host"].Source != hostDir || !mounts["/host"].ReadOnly {
		t.Errorf("hostPath: %v %+v", err, mounts["/host"])
	}
	if got := read("/info", "labels"); got != `app="vols"` {
		t.Errorf("downwardAPI labels %q", got)
	}
	if m := mounts["/logs"]; m.Source != filepath.Join(mounts["/scratch"].Source, "vols") {
		t.Errorf("subPathExpr mount %+v", m)
	}
	if env := strings.Join(cfg.Env, " "); !strings.Contains(env, "POD_IP=127.0.0.1") || !strings.Contains(env, "POD_NAME=vols") {
		t.Errorf("env %v", cfg.Env)
	}

	// Updates propagate, through the ..data swap.
	cm, _ := env.Client.CoreV1().ConfigMaps("default").Get(ctx, "cfg", metav1.GetOptions{})
	cm.Data["app.conf"] = "v2"
	if _, err := env.Client.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "configMap update propagated", func(ctx context.Context) (bool, error) {
		b, _ := os.ReadFile(filepath.Join(mounts["/etc/app"].Source, "app.conf"))
		return string(b) == "v2", nil
	})
	cur, _ := env.Client.CoreV1().Pods("default").Get(ctx, "vols", metav1.GetOptions{})
	cur.Labels["tier"] = "web"
	if _, err := env.Client.CoreV1().Pods("default").Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "label change propagated", func(ctx context.Context) (bool, error) {
		b, _ := os.ReadFile(filepath.Join(mounts["/info"].Source, "labels"))
		return string(b) == "app=\"vols\"\ntier=\"web\"", nil
	})
	if target, err := os.Readlink(filepath.Join(mounts["/etc/app"].Source, "app.conf")); err != nil || target != "..data/app.conf" {
		t.Errorf("app.conf -> %q (%v)", target, err)
	}

	// Deleting the pod unmounts and removes its volumes.
	if err := env.Client.CoreV1().Pods("default").Delete(ctx, "vols", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod directory removed", func(ctx context.Context) (bool, error) {
		_, err := os.Stat(filepath.Join(n.dataDir, "pods", string(p.UID)))
		return os.IsNotExist(err), nil
	})
}

func TestVolumeFailures(t *testing.T) {
	env := newEnv(t)
	startNode(t, env)
	dirType := corev1.HostPathDirectory
	p := pod("pvc", corev1.Container{Name: "app", Image: "busybox:1"})
	p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "claim"}}}}
	create(t, env.Client, p)
	q := pod("hostpath", corev1.Container{Name: "app", Image: "busybox:1"})
	q.Spec.Volumes = []corev1.Volume{{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
		Path: "/nonexistent/skiff-test", Type: &dirType}}}}
	create(t, env.Client, q)
	r := pod("missing-cm", corev1.Container{Name: "app", Image: "busybox:1"})
	r.Spec.Volumes = []corev1.Volume{{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}}}}}
	create(t, env.Client, r)

	hasEvent(t, env.Client, "pvc", `Warning FailedMount: MountVolume.SetUp failed for volume "data" : persistentVolumeClaim volumes are not supported yet (claim "claim")`)
	hasEvent(t, env.Client, "hostpath", `Warning FailedMount: MountVolume.SetUp failed for volume "h" : hostPath type check failed: /nonexistent/skiff-test is not a directory`)
	hasEvent(t, env.Client, "missing-cm", `Warning FailedMount: MountVolume.SetUp failed for volume "c" : configmaps "absent" not found`)
	for _, name := range []string{"pvc", "hostpath", "missing-cm"} {
		got := waitPod(t, env.Client, name, "pending, containers creating", func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodPending && waiting(p, "app", "ContainerCreating")
		})
		_ = got
	}
}
