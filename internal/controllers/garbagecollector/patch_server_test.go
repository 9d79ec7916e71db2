package garbagecollector_test

import (
	"log/slog"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"

	"skiff.dev/skiff/internal/controllers/garbagecollector"
	"skiff.dev/skiff/internal/testenv"
)

// TestPatchStale checks that a patch computed from a stale copy fails on
// the server instead of removing the wrong element, and that patch then
// recomputes it from the server's copy.
func TestPatchStale(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	mc, err := metadata.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	gc := garbagecollector.New(mc, slog.New(slog.DiscardHandler))
	ctx := t.Context()
	refs := []metav1.OwnerReference{
		{APIVersion: "v1", Kind: "ConfigMap", Name: "a", UID: "uid-a"},
		{APIVersion: "v1", Kind: "ConfigMap", Name: "b", UID: "uid-b"},
	}
	s, err := env.Client.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s", OwnerReferences: refs, Finalizers: []string{"x/y", "x/z"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s, _ := env.Client.CoreV1().Secrets("default").Get(ctx, "s", metav1.GetOptions{})
		s.Finalizers = nil
		_, _ = env.Client.CoreV1().Secrets("default").Update(ctx, s, metav1.UpdateOptions{})
	})
	// The stale copy has the references and finalizers the other way round.
	stale := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		UID: s.UID, OwnerReferences: []metav1.OwnerReference{refs[1], refs[0]}, Finalizers: []string{"x/z", "x/y"},
	}}
	for _, build := range []garbagecollector.PatchBuilder{garbagecollector.RemoveOwnerRefs("uid-a"), garbagecollector.RemoveFinalizer("x/y")} {
		if _, err := garbagecollector.PatchSecret(ctx, gc, "default", "s", s.UID, stale, build); err != nil {
			t.Fatal(err)
		}
	}
	got, err := env.Client.CoreV1().Secrets("default").Get(ctx, "s", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.OwnerReferences) != 1 || got.OwnerReferences[0].UID != "uid-b" {
		t.Errorf("owner references = %v, want only uid-b", got.OwnerReferences)
	}
	if len(got.Finalizers) != 1 || got.Finalizers[0] != "x/z" {
		t.Errorf("finalizers = %v, want [x/z]", got.Finalizers)
	}
	// A patch for another object of the same name changes nothing.
	other := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{UID: "someone-else", Finalizers: []string{"x/z"}}}
	if done, err := garbagecollector.PatchSecret(ctx, gc, "default", "s", other.UID, other, garbagecollector.RemoveFinalizer("x/z")); err != nil || done {
		t.Errorf("patch of a namesake = %v, %v; want false, nil", done, err)
	}
}
