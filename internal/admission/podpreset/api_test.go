package podpreset_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	settingsv1alpha1 "skiff.dev/skiff/internal/apis/settings/v1alpha1"
	"skiff.dev/skiff/internal/testenv"
)

const presetYAML = `apiVersion: settings.k8s.io/v1alpha1
kind: PodPreset
metadata:
  name: allow-database
spec:
  selector:
    matchLabels:
      role: frontend
  env:
    - name: DB_PORT
      value: "6379"
  envFrom:
    - configMapRef:
        name: etcd-env-config
  volumeMounts:
    - mountPath: /cache
      name: cache-volume
  volumes:
    - name: cache-volume
      emptyDir: {}
`

func frontend(name string, edit ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"role": "frontend"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "website", Image: "nginx"}}},
	}
	for _, e := range edit {
		e(p)
	}
	return p
}

// TestPodPresetWithKubectl applies a PodPreset with kubectl (the
// workshop's way) and creates pods that it matches, opts out of, and
// conflicts with.
func TestPodPresetWithKubectl(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds the skiff binary")
	}
	kubectl := filepath.Join(filepath.Dir(testenv.Binary(t)), "kubectl")
	env := testenv.Start(t, testenv.WithoutControllers)
	ctx := context.Background()
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), kubectl, args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := run(presetYAML, "apply", "-f", "-"); !strings.Contains(out, "podpreset.settings.k8s.io/allow-database created") {
		t.Fatalf("kubectl apply: %s", out)
	}
	if out := run(presetYAML, "apply", "-f", "-"); !strings.Contains(out, "unchanged") {
		t.Errorf("second kubectl apply: %s", out)
	}
	if out := run("", "get", "podpresets"); !strings.Contains(out, "allow-database") {
		t.Fatalf("kubectl get podpresets:\n%s", out)
	}

	settings, err := settingsv1alpha1.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	pp, err := settings.Get(ctx, "default", "allow-database")
	if err != nil {
		t.Fatal(err)
	}
	// Stored with its volume defaulted as in a pod.
	if len(pp.Spec.Volumes) != 1 || pp.Spec.Volumes[0].EmptyDir == nil {
		t.Fatalf("preset volumes %+v", pp.Spec.Volumes)
	}

	pods := env.Client.CoreV1().Pods("default")
	p, err := pods.Create(ctx, frontend("website", func(p *corev1.Pod) {
		p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox"}}
	}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Annotations["podpreset.admission.kubernetes.io/podpreset-allow-database"] != pp.ResourceVersion {
		t.Errorf("annotations %v, want the preset's resourceVersion %s", p.Annotations, pp.ResourceVersion)
	}
	for _, c := range append(p.Spec.Containers, p.Spec.InitContainers...) {
		if len(c.Env) != 1 || c.Env[0].Name != "DB_PORT" || len(c.EnvFrom) != 1 || len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/cache" {
			t.Errorf("container %s: env %v envFrom %v mounts %v", c.Name, c.Env, c.EnvFrom, c.VolumeMounts)
		}
	}
	if len(p.Spec.Volumes) != 1 || p.Spec.Volumes[0].Name != "cache-volume" {
		t.Errorf("volumes %v", p.Spec.Volumes)
	}

	cases := []struct {
		name string
		pod  *corev1.Pod
	}{
		{"not selected", frontend("backend", func(p *corev1.Pod) { p.Labels["role"] = "backend" })},
		{"opted out", frontend("excluded", func(p *corev1.Pod) {
			p.Annotations = map[string]string{"podpreset.admission.kubernetes.io/exclude": "true"}
		})},
		{"mirror pod", frontend("mirror", func(p *corev1.Pod) {
			p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"}
		})},
		{"conflicting env", frontend("conflict", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "DB_PORT", Value: "5432"}}
		})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := pods.Create(ctx, tc.pod, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Spec.Volumes) != 0 || len(p.Spec.Containers[0].EnvFrom) != 0 {
				t.Errorf("preset applied: volumes %v envFrom %v", p.Spec.Volumes, p.Spec.Containers[0].EnvFrom)
			}
			for k := range p.Annotations {
				if strings.HasPrefix(k, "podpreset.admission.kubernetes.io/podpreset-") {
					t.Errorf("annotation %s", k)
				}
			}
		})
	}

	// The spec is immutable; the preset can go.
	bad := strings.Replace(presetYAML, `"6379"`, `"6380"`, 1)
	cmd := exec.CommandContext(t.Context(), kubectl, "apply", "-f", "-")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
	cmd.Stdin = strings.NewReader(bad)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "field is immutable") {
		t.Errorf("changing a preset's spec: %v\n%s", err, out)
	}
	run("", "delete", "podpreset", "allow-database")
	if _, err := settings.Get(ctx, "default", "allow-database"); !apierrors.IsNotFound(err) {
		t.Errorf("after delete: %v", err)
	}
}
