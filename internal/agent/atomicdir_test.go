package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// listProjection returns what a reader of dir sees: path → content and
// mode, following the symlinks.
func listProjection(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(rel string)
	walk = func(rel string) {
		p := filepath.Join(dir, rel)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.IsDir() {
			sub, _ := os.ReadDir(p)
			for _, e := range sub {
				walk(filepath.Join(rel, e.Name()))
			}
			return
		}
		b, _ := os.ReadFile(p)
		out[rel] = fi.Mode().Perm().String() + " " + string(b)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..") {
			walk(e.Name())
		}
	}
	return out
}

func TestWriteProjection(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	steps := []struct {
		name    string
		payload map[string]fileProjection
		wrote   bool
		want    map[string]string
	}{
		{"first", map[string]fileProjection{"a": {[]byte("1"), 0o644}, "sub/b": {[]byte("2"), 0o400}}, true,
			map[string]string{"a": "-rw-r--r-- 1", "sub/b": "-r-------- 2"}},
		{"same again", map[string]fileProjection{"a": {[]byte("1"), 0o644}, "sub/b": {[]byte("2"), 0o400}}, false,
			map[string]string{"a": "-rw-r--r-- 1", "sub/b": "-r-------- 2"}},
		{"mode change", map[string]fileProjection{"a": {[]byte("1"), 0o600}, "sub/b": {[]byte("2"), 0o400}}, true,
			map[string]string{"a": "-rw------- 1", "sub/b": "-r-------- 2"}},
		{"key removed and added", map[string]fileProjection{"a": {[]byte("one"), 0o600}, "c": {[]byte("3"), 0o644}}, true,
			map[string]string{"a": "-rw------- one", "c": "-rw-r--r-- 3"}},
		{"empty", map[string]fileProjection{}, true, map[string]string{}},
	}
	for _, s := range steps {
		wrote, err := writeProjection(dir, s.payload)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if wrote != s.wrote {
			t.Errorf("%s: wrote = %v, want %v", s.name, wrote, s.wrote)
		}
		if diff := cmp.Diff(s.want, listProjection(t, dir)); diff != "" {
			t.Errorf("%s: files (-want +got):\n%s", s.name, diff)
		}
		// Exactly one version directory remains, and ..data names it.
		entries, _ := os.ReadDir(dir)
		var versions []string
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "..") && e.Name() != dataDirName {
				versions = append(versions, e.Name())
			}
		}
		target, _ := os.Readlink(filepath.Join(dir, dataDirName))
		if len(versions) != 1 || versions[0] != target {
			t.Errorf("%s: versions %v, ..data -> %q", s.name, versions, target)
		}
	}
}

func TestWriteProjectionRefusesBadPaths(t *testing.T) {
	for _, p := range []string{"/abs", "../escape", "a/../../b", "..data", "..x", ""} {
		if _, err := writeProjection(t.TempDir(), map[string]fileProjection{p: {[]byte("x"), 0o644}}); err == nil {
			t.Errorf("path %q accepted", p)
		}
	}
}

// TestWriteProjectionAtomic reads a two-file volume while it is rewritten:
// a reader never sees one file of the old version with one of the new.
func TestWriteProjectionAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	version := func(n int) map[string]fileProjection {
		v := []byte(strings.Repeat("x", n))
		return map[string]fileProjection{"a": {v, 0o644}, "b": {v, 0o644}}
	}
	if _, err := writeProjection(dir, version(1)); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var mixed atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			// Read both through one resolution of ..data, as a
			// consistent reader does.
			target, err := os.Readlink(filepath.Join(dir, dataDirName))
			if err != nil {
				continue
			}
			a, errA := os.ReadFile(filepath.Join(dir, target, "a"))
			b, errB := os.ReadFile(filepath.Join(dir, target, "b"))
			if errA == nil && errB == nil && len(a) != len(b) {
				mixed.Add(1)
			}
			// The visible names always resolve. A read that resolved
			// ..data just before a swap may find the old directory
			// already removed (as with the kubelet's writer); a second
			// read must then succeed.
			if _, err := os.ReadFile(filepath.Join(dir, "a")); err != nil {
				if _, err := os.ReadFile(filepath.Join(dir, "a")); err != nil {
					mixed.Add(1)
				}
			}
		}
	})
	for i := 2; i < 200; i++ {
		if _, err := writeProjection(dir, version(i)); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := mixed.Load(); n > 0 {
		t.Errorf("%d reads saw a torn or missing volume", n)
	}
}

func TestVolumePayload(t *testing.T) {
	client := fake.NewSimpleClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "ns"}, Data: map[string]string{"a": "A", "b": "B"},
			BinaryData: map[string][]byte{"bin": {0, 1}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Namespace: "ns"}, Data: map[string][]byte{"user": []byte("u"), "pw": []byte("p")}},
	)
	a := New(Options{Client: client}, nil)
	pod := envPod()
	pod.Spec.Containers = []corev1.Container{{Name: "app", Resources: res(nil, map[corev1.ResourceName]string{mem: "64Mi"})}}
	m := func(v int32) *int32 { return &v }
	cases := []struct {
		name    string
		v       corev1.VolumeSource
		want    map[string]string // path → "mode content"
		wantErr string
	}{
		{"configMap all keys", corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}},
			map[string]string{"a": "644 A", "b": "644 B", "bin": "644 \x00\x01"}, ""},
		{"configMap items and modes", corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"},
			DefaultMode: m(0o440), Items: []corev1.KeyToPath{{Key: "a", Path: "dir/a.txt"}, {Key: "b", Path: "b", Mode: m(0o400)}}}},
			map[string]string{"dir/a.txt": "440 A", "b": "400 B"}, ""},
		{"configMap missing key", corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"},
			Items: []corev1.KeyToPath{{Key: "zz", Path: "zz"}}}}, nil, "configmap references non-existent config key: zz"},
		{"configMap missing", corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}}},
			nil, `configmaps "nope" not found`},
		{"configMap missing but optional", corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Optional: ptr(true)}},
			map[string]string{}, ""},
		{"secret", corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec", DefaultMode: m(0o400)}},
			map[string]string{"user": "400 u", "pw": "400 p"}, ""},
		{"secret missing key", corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec", Items: []corev1.KeyToPath{{Key: "x", Path: "x"}}}},
			nil, "references non-existent secret key: x"},
		{"downwardAPI", corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}, Mode: m(0o600)},
			{Path: "mem", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.memory"}},
		}}}, map[string]string{"labels": "644 app=\"web\"\ntier=\"front\"", "name": "600 web", "mem": "644 67108864"}, ""},
		{"projected", corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: m(0o444), Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Items: []corev1.KeyToPath{{Key: "a", Path: "cfg/a"}}}},
			{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Items: []corev1.KeyToPath{{Key: "user", Path: "sec/user"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
		}}}, map[string]string{"cfg/a": "444 A", "sec/user": "444 u", "ns": "444 ns"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := &corev1.Volume{Name: "v", VolumeSource: c.v}
			got, err := a.volumePayload(context.Background(), pod, v, newObjects(client, "ns"))
			if c.wantErr != "" {
				if err == nil || err.Error() != c.wantErr {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			flat := map[string]string{}
			for p, f := range got {
				flat[p] = fmt.Sprintf("%o %s", f.Mode.Perm(), f.Data)
			}
			if diff := cmp.Diff(c.want, flat); diff != "" {
				t.Errorf("payload (-want +got):\n%s", diff)
			}
		})
	}
}
