package serviceaccount_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"skiff.dev/skiff/internal/controllers/serviceaccount"
	"skiff.dev/skiff/internal/testenv"
)

func start(t *testing.T, opts serviceaccount.Options) kubernetes.Interface {
	t.Helper()
	env := testenv.Start(t, testenv.WithoutControllers)
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: env.Client.CoreV1().Events("")})
	t.Cleanup(b.Shutdown)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := serviceaccount.New(env.Client, factory, b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "serviceaccount-controller"}), log, opts)
	testenv.Run(t, "serviceaccount controller", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		return c.Run(ctx, 2)
	})
	return env.Client
}

func TestDefaultServiceAccount(t *testing.T) {
	c := start(t, serviceaccount.Options{})
	ctx := t.Context()
	// Namespaces that existed before the controller started.
	for _, ns := range []string{"default", "kube-system"} {
		waitFor(t, c, ns, "default")
	}
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fresh"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, "fresh", "default")

	// Deleted, it comes back (as a new object).
	old, err := c.CoreV1().ServiceAccounts("fresh").Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CoreV1().ServiceAccounts("fresh").Delete(ctx, "default", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "default is back", func(ctx context.Context) (bool, error) {
		sa, err := c.CoreV1().ServiceAccounts("fresh").Get(ctx, "default", metav1.GetOptions{})
		return err == nil && sa.UID != old.UID, nil
	})
}

func TestMoreNames(t *testing.T) {
	c := start(t, serviceaccount.Options{Names: []string{"default", "builder"}})
	if _, err := c.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ci"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, "ci", "default")
	waitFor(t, c, "ci", "builder")
}

func waitFor(t *testing.T, c kubernetes.Interface, ns, name string) {
	t.Helper()
	eventually(t, ns+"/"+name+" exists", func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil, nil
	})
}

func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 30*time.Second, true, cond)
	if err != nil {
		t.Fatalf("waiting until %s: %v", what, err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
