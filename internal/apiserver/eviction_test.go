package apiserver_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	policyv1beta1 "k8s.io/api/policy/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/drain"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/testenv"
)

// evictionEnv is a namespace with pods and budgets whose status the test
// sets itself (no disruption controller runs).
type evictionEnv struct {
	t      *testing.T
	client kubernetes.Interface
	ns     string
}

func newEvictionEnv(t *testing.T, client kubernetes.Interface, ns string) *evictionEnv {
	t.Helper()
	if _, err := client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return &evictionEnv{t: t, client: client, ns: ns}
}

// pod creates a pod on node n1 labelled app=app in the given phase.
func (e *evictionEnv) pod(name, app string, phase corev1.PodPhase, ready bool) *corev1.Pod {
	e.t.Helper()
	ctx := e.t.Context()
	p, err := e.client.CoreV1().Pods(e.ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	p.Status.Phase = phase
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
	if p, err = e.client.CoreV1().Pods(e.ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// budget creates a budget selecting app and sets its status as the
// disruption controller would.
func (e *evictionEnv) budget(name, app string, allowed, healthy, desired int32, edit ...func(*policyv1.PodDisruptionBudget)) {
	e.t.Helper()
	ctx := e.t.Context()
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: policyv1.PodDisruptionBudgetSpec{
		MinAvailable: ptr.To(intstr.FromInt32(desired)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}}}
	for _, f := range edit {
		f(pdb)
	}
	pdb, err := e.client.PolicyV1().PodDisruptionBudgets(e.ns).Create(ctx, pdb, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation, DisruptionsAllowed: allowed,
		CurrentHealthy: healthy, DesiredHealthy: desired, ExpectedPods: healthy}
	if _, err := e.client.PolicyV1().PodDisruptionBudgets(e.ns).UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *evictionEnv) evict(name string, opts *metav1.DeleteOptions) error {
	return e.client.PolicyV1().Evictions(e.ns).Evict(e.t.Context(), &policyv1.Eviction{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}, DeleteOptions: opts})
}

// deleting reports whether the pod is gone or marked for deletion.
func (e *evictionEnv) deleting(name string) bool {
	e.t.Helper()
	p, err := e.client.CoreV1().Pods(e.ns).Get(e.t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return p.DeletionTimestamp != nil
}

func (e *evictionEnv) budgetStatus(name string) policyv1.PodDisruptionBudgetStatus {
	e.t.Helper()
	pdb, err := e.client.PolicyV1().PodDisruptionBudgets(e.ns).Get(e.t.Context(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return pdb.Status
}

func TestEviction(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	ctx := t.Context()

	t.Run("discovery lists pods/eviction", func(t *testing.T) {
		gv, err := drain.CheckEvictionSupport(env.Client)
		if err != nil || gv != policyv1.SchemeGroupVersion {
			t.Fatalf("kubectl's eviction check: %v, %v; want policy/v1", gv, err)
		}
	})

	t.Run("no budget", func(t *testing.T) {
		e := newEvictionEnv(t, env.Client, "no-budget")
		e.pod("lone", "lone", corev1.PodRunning, true)
		if err := e.evict("lone", nil); err != nil {
			t.Fatal(err)
		}
		p, err := env.Client.CoreV1().Pods(e.ns).Get(ctx, "lone", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.DeletionTimestamp == nil {
			t.Error("evicted pod is not being deleted")
		}
		if c := condition(p, corev1.DisruptionTarget); c == nil || c.Status != corev1.ConditionTrue || c.Reason != "EvictionByEvictionAPI" || c.Message != "Eviction API: evicting" {
			t.Errorf("DisruptionTarget condition %+v", c)
		}
		// Grace period from the Eviction's deleteOptions: gone at once.
		e.pod("quick", "lone", corev1.PodRunning, true)
		if err := e.evict("quick", &metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := env.Client.CoreV1().Pods(e.ns).Get(ctx, "quick", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("pod evicted with grace 0 still there: %v", err)
		}
		if err := e.evict("missing", nil); !apierrors.IsNotFound(err) {
			t.Errorf("evicting a missing pod: %v, want 404", err)
		}
	})

	t.Run("budget allows then blocks", func(t *testing.T) {
		e := newEvictionEnv(t, env.Client, "budget")
		for _, n := range []string{"web-1", "web-2", "web-3"} {
			e.pod(n, "web", corev1.PodRunning, true)
		}
		e.budget("web", "web", 1, 3, 2)
		if err := e.evict("web-1", nil); err != nil {
			t.Fatal(err)
		}
		if !e.deleting("web-1") {
			t.Error("web-1 not evicted")
		}
		st := e.budgetStatus("web")
		if st.DisruptionsAllowed != 0 {
			t.Errorf("disruptionsAllowed %d after an eviction, want 0", st.DisruptionsAllowed)
		}
		if _, ok := st.DisruptedPods["web-1"]; !ok || len(st.DisruptedPods) != 1 {
			t.Errorf("disruptedPods %v, want web-1", st.DisruptedPods)
		}
		if len(st.Conditions) != 1 || st.Conditions[0].Reason != policyv1.InsufficientPodsReason {
			t.Errorf("conditions %+v", st.Conditions)
		}

		err := e.evict("web-2", nil)
		if !apierrors.IsTooManyRequests(err) || !strings.Contains(err.Error(), "Cannot evict pod as it would violate the pod's disruption budget.") {
			t.Fatalf("second eviction: %v, want 429", err)
		}
		se := err.(apierrors.APIStatus).Status()
		if se.Details == nil || len(se.Details.Causes) != 1 || se.Details.Causes[0].Type != policyv1.DisruptionBudgetCause ||
			se.Details.Causes[0].Message != "The disruption budget web needs 2 healthy pods and has 3 currently" {
			t.Errorf("details %+v", se.Details)
		}
		if e.deleting("web-2") {
			t.Error("web-2 was deleted despite the budget")
		}
		// policy/v1beta1 Evictions are answered the same.
		err = env.Client.PolicyV1beta1().Evictions(e.ns).Evict(ctx, &policyv1beta1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "web-3", Namespace: e.ns}})
		if !apierrors.IsTooManyRequests(err) {
			t.Errorf("v1beta1 eviction: %v, want 429", err)
		}
	})

	t.Run("pending, finished and unready pods", func(t *testing.T) {
		e := newEvictionEnv(t, env.Client, "unhealthy")
		e.pod("pending", "db", corev1.PodPending, false)
		e.pod("done", "db", corev1.PodSucceeded, false)
		e.pod("unready", "db", corev1.PodRunning, false)
		e.pod("ok-1", "db", corev1.PodRunning, true)
		e.pod("ok-2", "db", corev1.PodRunning, true)
		e.budget("db", "db", 0, 2, 2)
		for _, n := range []string{"pending", "done", "unready"} {
			if err := e.evict(n, nil); err != nil {
				t.Errorf("evict %s: %v", n, err)
			}
			if !e.deleting(n) {
				t.Errorf("%s not evicted", n)
			}
		}
		if st := e.budgetStatus("db"); st.DisruptionsAllowed != 0 || len(st.DisruptedPods) != 0 {
			t.Errorf("budget used by unhealthy pods: %+v", st)
		}
		if err := e.evict("ok-1", nil); !apierrors.IsTooManyRequests(err) {
			t.Errorf("healthy pod: %v, want 429", err)
		}

		// Below its budget, an unready pod is protected unless the policy
		// is AlwaysAllow.
		e.pod("cache-unready", "cache", corev1.PodRunning, false)
		e.budget("cache", "cache", 0, 0, 1)
		if err := e.evict("cache-unready", nil); !apierrors.IsTooManyRequests(err) {
			t.Errorf("unready pod under IfHealthyBudget: %v, want 429", err)
		}
		e.pod("q-unready", "queue", corev1.PodRunning, false)
		e.budget("queue", "queue", 0, 0, 1, func(p *policyv1.PodDisruptionBudget) {
			p.Spec.UnhealthyPodEvictionPolicy = ptr.To(policyv1.AlwaysAllow)
		})
		if err := e.evict("q-unready", nil); err != nil || !e.deleting("q-unready") {
			t.Errorf("unready pod under AlwaysAllow: %v", err)
		}
	})

	t.Run("dry run", func(t *testing.T) {
		e := newEvictionEnv(t, env.Client, "dry")
		e.pod("a", "a", corev1.PodRunning, true)
		e.budget("a", "a", 1, 1, 0)
		err := env.Client.PolicyV1().Evictions(e.ns).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: e.ns},
			DeleteOptions: &metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}})
		if err != nil {
			t.Fatal(err)
		}
		if e.deleting("a") {
			t.Error("dry run deleted the pod")
		}
		if st := e.budgetStatus("a"); st.DisruptionsAllowed != 1 || len(st.DisruptedPods) != 0 {
			t.Errorf("dry run changed the budget: %+v", st)
		}
	})

	t.Run("two budgets", func(t *testing.T) {
		e := newEvictionEnv(t, env.Client, "two")
		e.pod("a", "a", corev1.PodRunning, true)
		e.budget("one", "a", 1, 1, 0)
		e.budget("two", "a", 1, 1, 0)
		err := e.evict("a", nil)
		if se, ok := err.(apierrors.APIStatus); !ok || se.Status().Code != http.StatusInternalServerError ||
			se.Status().Message != "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support." {
			t.Errorf("pod with two budgets: %v, want 500", err)
		}
	})

	t.Run("budget not yet processed", func(t *testing.T) {
		e := newEvictionEnv(t, env.Client, "stale")
		e.pod("a", "a", corev1.PodRunning, true)
		e.budget("a", "a", 1, 1, 0)
		pdb, err := env.Client.PolicyV1().PodDisruptionBudgets(e.ns).Get(ctx, "a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pdb.Spec.MinAvailable = ptr.To(intstr.FromInt32(1))
		if _, err := env.Client.PolicyV1().PodDisruptionBudgets(e.ns).Update(ctx, pdb, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		// client-go would wait out the Retry-After and try again; ask once.
		res := env.Client.CoreV1().RESTClient().Post().Namespace(e.ns).Resource("pods").Name("a").SubResource("eviction").
			Body(&policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: e.ns}}).MaxRetries(0).Do(ctx)
		var code int
		res.StatusCode(&code)
		err = res.Error()
		if code != http.StatusTooManyRequests || !strings.Contains(err.Error(), "disruption budget") {
			t.Errorf("eviction against a stale budget: %d %v", code, err)
		}
		if se, ok := err.(apierrors.APIStatus); !ok || se.Status().Details == nil || se.Status().Details.RetryAfterSeconds != 10 ||
			!strings.Contains(se.Status().Details.Causes[0].Message, "is still being processed by the server") {
			t.Errorf("status %+v", err)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		e := newEvictionEnv(t, env.Client, "bad")
		e.pod("a", "a", corev1.PodRunning, true)
		err := env.Client.CoreV1().RESTClient().Post().Namespace(e.ns).Resource("pods").Name("a").SubResource("eviction").
			Body(&policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "b"}}).Do(ctx).Error()
		if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "name in URL does not match name in Eviction object") {
			t.Errorf("name mismatch: %v", err)
		}
		err = env.Client.CoreV1().RESTClient().Get().Namespace(e.ns).Resource("pods").Name("a").SubResource("eviction").Do(ctx).Error()
		if !apierrors.IsMethodNotSupported(err) {
			t.Errorf("GET eviction: %v, want 405", err)
		}
	})
}

// BenchmarkEviction is one eviction of a running pod under a budget that
// allows it: the budget's status write, the DisruptionTarget condition and
// the graceful delete, through client-go.
func BenchmarkEviction(b *testing.B) {
	env := testenv.Start(b, testenv.WithoutControllers)
	ctx := context.Background()
	ns := "bench"
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	pdb, err := env.Client.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "b"},
		Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "b"}}}},
		metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation, DisruptionsAllowed: 1 << 30}
	if _, err := env.Client.PolicyV1().PodDisruptionBudgets(ns).UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
		b.Fatal(err)
	}
	var names []string
	for i := range b.N {
		name := "p" + strconv.Itoa(i)
		p, err := env.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "b"}},
			Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		if _, err := env.Client.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		names = append(names, name)
	}
	b.ResetTimer()
	for _, name := range names {
		if err := env.Client.PolicyV1().Evictions(ns).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}); err != nil {
			b.Fatal(err)
		}
	}
}
