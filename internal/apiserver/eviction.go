package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	policyv1beta1 "k8s.io/api/policy/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	pdbhelper "k8s.io/component-helpers/apps/poddisruptionbudget"
)

// The eviction subresource, as kube-apiserver's (pkg/registry/core/pod/
// storage/eviction.go): POST /api/v1/namespaces/{ns}/pods/{name}/eviction
// with a policy/v1 (or v1beta1) Eviction deletes the pod with the
// Eviction's deleteOptions unless that would break the one
// PodDisruptionBudget selecting it. Budgets are checked and decremented in
// the store with optimistic concurrency; the evicted pod is recorded in
// the budget's status.disruptedPods, where the disruption controller
// finds it.

const (
	// evictionRetries bounds the re-reads after write conflicts.
	evictionRetries = 20
	// maxDisruptedPods is upstream's MaxDisruptedPodSize: beyond it the
	// disruption controller is too far behind for more evictions.
	maxDisruptedPods = 2000
	budgetViolated   = "Cannot evict pod as it would violate the pod's disruption budget."
	// reasonEvictionByEvictionAPI is the DisruptionTarget reason of
	// evicted pods (k8s.io/api has no constant for it).
	reasonEvictionByEvictionAPI = "EvictionByEvictionAPI"
)

var (
	podGK      = schema.GroupKind{Kind: "Pod"}
	budgetGK   = schema.GroupKind{Group: "policy", Kind: "PodDisruptionBudget"}
	evictionGR = schema.GroupResource{Resource: "pods/eviction"}
	budgetGR   = schema.GroupResource{Group: "policy", Resource: "poddisruptionbudget"}
)

// serveEviction answers an eviction request; it reports whether the
// request was one.
func (s *Server) serveEviction(w http.ResponseWriter, r *http.Request, ri requestInfo) bool {
	if ri.group != "" || ri.version != "v1" || ri.resource != "pods" || ri.subresource != "eviction" {
		return false
	}
	if err := s.evict(r.Context(), w, r, ri); err != nil {
		if st, ok := err.(apierrors.APIStatus); ok {
			if d := st.Status().Details; d != nil && d.RetryAfterSeconds > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(d.RetryAfterSeconds)))
			}
		}
		writeError(w, err)
	}
	return true
}

func (s *Server) evict(ctx context.Context, w http.ResponseWriter, r *http.Request, ri requestInfo) error {
	if ri.verb != "create" {
		return apierrors.NewMethodNotSupported(evictionGR, ri.verb)
	}
	if ri.namespace == "" {
		return apierrors.NewBadRequest("evictions are namespaced: the request needs a namespace")
	}
	out, err := negotiate(r)
	if err != nil {
		return err
	}
	ev, err := decodeEviction(r)
	if err != nil {
		return err
	}
	if ev.Name != ri.name {
		return apierrors.NewBadRequest("name in URL does not match name in Eviction object")
	}
	if ev.Namespace != "" && ev.Namespace != ri.namespace {
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	opts, err := evictionDeleteOptions(ev, r)
	if err != nil {
		return err
	}
	pods, budgets := s.storageKind(podGK), s.storageKind(budgetGK)
	if pods == nil {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, ri.name)
	}
	e := &eviction{s: s, pods: pods, budgets: budgets, ns: ri.namespace, name: ri.name, opts: opts}
	st, err := e.run(ctx)
	if err != nil {
		return err
	}
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	writeObject(w, int(st.Code), output{yaml: out.yaml, proto: out.proto}, st)
	return nil
}

// decodeEviction reads a policy/v1 or policy/v1beta1 Eviction (JSON,
// YAML or protobuf) as a policy/v1 one; the two are the same.
func decodeEviction(r *http.Request) (*policyv1.Eviction, error) {
	data, proto, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if proto {
		obj, _, err := protoSerializer.Decode(data, nil, nil)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("Eviction cannot be decoded: %v", err))
		}
		switch ev := obj.(type) {
		case *policyv1.Eviction:
			return ev, nil
		case *policyv1beta1.Eviction:
			return &policyv1.Eviction{ObjectMeta: ev.ObjectMeta, DeleteOptions: ev.DeleteOptions}, nil
		}
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%T cannot be handled as an Eviction", obj))
	}
	ev := &policyv1.Eviction{}
	if err := json.Unmarshal(data, ev); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("Eviction in version \"v1\" cannot be handled as a Eviction: %v", err))
	}
	if k := ev.Kind; k != "" && k != "Eviction" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a Eviction: the kind in the data (%s) does not match the endpoint's kind (Eviction)", k, ev.APIVersion, k))
	}
	switch v := ev.APIVersion; v {
	case "", "policy/v1", "policy/v1beta1":
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (policy/v1)", v))
	}
	return ev, nil
}

// evictionDeleteOptions merges the request's dryRun into the Eviction's
// deleteOptions, refusing contradicting ones.
func evictionDeleteOptions(ev *policyv1.Eviction, r *http.Request) (*metav1.DeleteOptions, error) {
	var query []string
	if isDryRun(r) {
		query = []string{metav1.DryRunAll}
	}
	opts := &metav1.DeleteOptions{DryRun: query}
	if ev.DeleteOptions != nil {
		opts = ev.DeleteOptions.DeepCopy()
		switch {
		case len(opts.DryRun) == 0:
			opts.DryRun = query
		case len(query) > 0 && !slices.Equal(query, opts.DryRun):
			return nil, apierrors.NewBadRequest(fmt.Sprintf("Non-matching dry-run options in request and content: %v and %v", query, opts.DryRun))
		}
	}
	for _, v := range opts.DryRun {
		if v != metav1.DryRunAll {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("unsupported dry run value %q", v))
		}
	}
	if p := opts.PropagationPolicy; p != nil {
		switch *p {
		case metav1.DeletePropagationOrphan, metav1.DeletePropagationBackground, metav1.DeletePropagationForeground:
		default:
			return nil, apierrors.NewBadRequest(fmt.Sprintf("propagationPolicy %q is invalid: must be Orphan, Background or Foreground", *p))
		}
	}
	return opts, nil
}

// eviction is one eviction request in progress.
type eviction struct {
	s              *Server
	pods, budgets  *kind
	ns, name       string
	opts           *metav1.DeleteOptions
	dryRun         bool
	callerPinnedRV bool
}

func (e *eviction) run(ctx context.Context) (*metav1.Status, error) {
	e.dryRun = len(e.opts.DryRun) > 0
	e.callerPinnedRV = e.opts.Preconditions != nil && e.opts.Preconditions.ResourceVersion != nil
	// A pod that is finished, not yet running or already going is
	// deleted without asking its budget: it disrupts nothing more.
	var pod *corev1.Pod
	for attempt := 0; ; attempt++ {
		var err error
		if pod, err = e.getPod(ctx); err != nil {
			return nil, err
		}
		if !canIgnoreBudget(pod) {
			break
		}
		opts := e.opts
		if enforceResourceVersion(pod) && !e.callerPinnedRV {
			// Delete only the pod judged, not one that became ready since.
			opts = withResourceVersion(opts, pod.ResourceVersion)
		}
		err = e.deletePod(ctx, opts)
		if apierrors.IsConflict(err) && !e.callerPinnedRV && attempt < evictionRetries {
			continue
		}
		if err != nil {
			return nil, err
		}
		return success(), nil
	}

	budgets, err := e.budgetsFor(ctx, pod)
	if err != nil {
		return nil, err
	}
	if len(budgets) > 1 {
		return nil, &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusInternalServerError,
			Message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."}}
	}
	opts, budgetName := e.opts, ""
	pinned := false
	if len(budgets) == 1 {
		pdb := budgets[0]
		budgetName = pdb.Name
		if !podReady(pod) && unhealthyEvictable(pdb) {
			// An unhealthy pod does not count towards the budget: it goes
			// without using up a disruption, provided it is still the pod
			// that was judged.
			pinned = true
			opts = withResourceVersion(opts, pod.ResourceVersion)
		} else if err := e.takeDisruption(ctx, pod, pdb.Name); err != nil {
			return nil, err
		}
	}
	if err := e.deletePod(ctx, opts); err != nil {
		if apierrors.IsConflict(err) && pinned && !e.callerPinnedRV {
			return nil, stillProcessing(budgetName)
		}
		return nil, err
	}
	return success(), nil
}

func success() *metav1.Status {
	return &metav1.Status{Status: metav1.StatusSuccess, Code: http.StatusCreated}
}

func (e *eviction) getPod(ctx context.Context) (*corev1.Pod, error) {
	kv, err := e.s.cfg.Store.Get(ctx, e.pods.key(e.ns, e.name))
	if err != nil {
		return nil, storeError(e.pods, e.name, err)
	}
	obj, err := e.pods.decodeKV(kv)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return obj.(*corev1.Pod), nil
}

// canIgnoreBudget: terminal, pending or already deleting pods.
func canIgnoreBudget(pod *corev1.Pod) bool {
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed, corev1.PodPending:
		return true
	}
	return pod.DeletionTimestamp != nil
}

// enforceResourceVersion: a pending pod may become ready meanwhile.
func enforceResourceVersion(pod *corev1.Pod) bool {
	return pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed && pod.DeletionTimestamp == nil
}

func withResourceVersion(opts *metav1.DeleteOptions, rv string) *metav1.DeleteOptions {
	out := opts.DeepCopy()
	if out.Preconditions == nil {
		out.Preconditions = &metav1.Preconditions{}
	}
	out.Preconditions.ResourceVersion = &rv
	return out
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// unhealthyEvictable reports whether an unready pod may go without using
// a disruption: always under the AlwaysAllow policy, otherwise
// (IfHealthyBudget, the default) while the budget is met.
func unhealthyEvictable(pdb *policyv1.PodDisruptionBudget) bool {
	if p := pdb.Spec.UnhealthyPodEvictionPolicy; p != nil && *p == policyv1.AlwaysAllow {
		return true
	}
	return pdb.Status.CurrentHealthy >= pdb.Status.DesiredHealthy && pdb.Status.DesiredHealthy > 0
}

// budgetsFor returns the budgets in the pod's namespace whose selector
// picks it (an empty selector picks nothing here, as upstream's eviction).
func (e *eviction) budgetsFor(ctx context.Context, pod *corev1.Pod) ([]*policyv1.PodDisruptionBudget, error) {
	if e.budgets == nil {
		return nil, nil
	}
	page, _, err := e.s.listObjects(ctx, e.budgets, pod.Namespace, listOptions{labels: labels.Everything(), fields: fields.Everything()})
	if err != nil {
		return nil, err
	}
	var out []*policyv1.PodDisruptionBudget
	for _, obj := range page.items {
		pdb := obj.(*policyv1.PodDisruptionBudget)
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		out = append(out, pdb)
	}
	return out, nil
}

// takeDisruption checks that the budget allows one more disruption and
// uses it up, recording the pod in status.disruptedPods.
func (e *eviction) takeDisruption(ctx context.Context, pod *corev1.Pod, name string) error {
	key := e.budgets.key(e.ns, name)
	for range evictionRetries {
		kv, err := e.s.cfg.Store.Get(ctx, key)
		if err != nil {
			return storeError(e.budgets, name, err)
		}
		obj, err := e.budgets.decodeKV(kv)
		if err != nil {
			return apierrors.NewInternalError(err)
		}
		pdb := obj.(*policyv1.PodDisruptionBudget)
		if err := allowsDisruption(pdb); err != nil {
			return err
		}
		next := pdb.DeepCopy()
		next.Status.DisruptionsAllowed--
		if next.Status.DisruptionsAllowed == 0 {
			pdbhelper.UpdateDisruptionAllowedCondition(next)
		}
		if e.dryRun {
			return nil
		}
		if next.Status.DisruptedPods == nil {
			next.Status.DisruptedPods = map[string]metav1.Time{}
		}
		next.Status.DisruptedPods[pod.Name] = metav1.NewTime(e.s.now())
		_, _, retry, err := e.s.commit(ctx, e.budgets, key, name, pdb, next, kv.Rev, false)
		if retry {
			continue
		}
		return err
	}
	return apierrors.NewTimeoutError(fmt.Sprintf("couldn't update PodDisruptionBudget %q due to conflicts", name), 10)
}

// allowsDisruption returns upstream's refusals for a budget that allows
// no disruption now.
func allowsDisruption(pdb *policyv1.PodDisruptionBudget) error {
	switch st := pdb.Status; {
	case st.ObservedGeneration < pdb.Generation:
		return stillProcessing(pdb.Name)
	case st.DisruptionsAllowed < 0:
		return apierrors.NewForbidden(budgetGR, pdb.Name, fmt.Errorf("pdb disruptions allowed is negative"))
	case len(st.DisruptedPods) > maxDisruptedPods:
		return apierrors.NewForbidden(budgetGR, pdb.Name, fmt.Errorf("DisruptedPods map too big - too many evictions not confirmed by PDB controller"))
	case st.DisruptionsAllowed == 0:
		err := apierrors.NewTooManyRequests(budgetViolated, 0)
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{Type: policyv1.DisruptionBudgetCause,
			Message: fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently", pdb.Name, st.DesiredHealthy, st.CurrentHealthy)})
		return err
	}
	return nil
}

// stillProcessing is the 429 for a budget the controller has not caught
// up with.
func stillProcessing(name string) error {
	err := apierrors.NewTooManyRequests(budgetViolated, 10)
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{Type: policyv1.DisruptionBudgetCause,
		Message: fmt.Sprintf("The disruption budget %s is still being processed by the server.", name)})
	return err
}

// deletePod marks the pod as a disruption target (the
// DisruptionTarget condition, reason EvictionByEvictionAPI) and deletes
// it with opts. A dry run only deletes, which writes nothing.
func (e *eviction) deletePod(ctx context.Context, opts *metav1.DeleteOptions) error {
	if !e.dryRun {
		updated, _, err := e.s.guaranteedUpdate(ctx, e.pods, e.ns, e.name, "status", false, func(cur runtime.Object) (runtime.Object, error) {
			pod := cur.(*corev1.Pod)
			if err := checkPreconditions(e.pods, pod, opts.Preconditions); err != nil {
				return nil, err
			}
			setDisruptionTarget(&pod.Status, metav1.NewTime(e.s.now()))
			return pod, nil
		})
		if err != nil {
			return err
		}
		if p := opts.Preconditions; p != nil && p.ResourceVersion != nil {
			// The condition is this eviction's own write.
			opts = withResourceVersion(opts, accessor(updated).GetResourceVersion())
		}
	}
	_, _, err := e.s.deleteObject(ctx, e.pods, e.ns, e.name, opts)
	return err
}

func checkPreconditions(k *kind, pod *corev1.Pod, p *metav1.Preconditions) error {
	if p == nil {
		return nil
	}
	if p.UID != nil && *p.UID != "" && *p.UID != pod.UID {
		return apierrors.NewConflict(k.gr, pod.Name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, pod.UID))
	}
	if p.ResourceVersion != nil && *p.ResourceVersion != "" && *p.ResourceVersion != pod.ResourceVersion {
		return apierrors.NewConflict(k.gr, pod.Name, fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, pod.ResourceVersion))
	}
	return nil
}

// setDisruptionTarget sets the pod's DisruptionTarget condition to True
// with the Eviction API's reason.
func setDisruptionTarget(st *corev1.PodStatus, now metav1.Time) {
	want := corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: reasonEvictionByEvictionAPI, Message: "Eviction API: evicting", LastTransitionTime: now}
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != corev1.DisruptionTarget {
			continue
		}
		if c.Status == want.Status {
			want.LastTransitionTime = c.LastTransitionTime
		}
		*c = want
		return
	}
	st.Conditions = append(st.Conditions, want)
}
