package testenv

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// PodOutcome is what a FakeKubelet makes of a pod.
type PodOutcome struct {
	// Phase to reach: Running (default), Succeeded or Failed.
	Phase corev1.PodPhase
	// Ready, for Running pods (default true via Running()).
	Ready bool
	// ExitCode of the (first) container for Succeeded/Failed pods.
	ExitCode int32
	// Delay before the status is written.
	Delay time.Duration
	// Skip leaves the pod alone (Pending).
	Skip bool
}

// Running is a Running, Ready pod.
func Running() PodOutcome { return PodOutcome{Phase: corev1.PodRunning, Ready: true} }

// FakeKubelet plays the node agent for controller tests, without running
// anything: every pod in the cluster (scheduled or not) gets the status
// decide returns (nil decide: Running and Ready), written through the
// status subresource with a pod IP, start time and container statuses;
// pods being deleted gracefully are deleted at once. It stops at cleanup.
type FakeKubelet struct {
	client  kubernetes.Interface
	decide  func(*corev1.Pod) PodOutcome
	nextIP  atomic.Uint32
	mu      sync.Mutex
	pending map[string]bool
}

// StartFakeKubelet starts a FakeKubelet against client.
func StartFakeKubelet(t testing.TB, client kubernetes.Interface, decide func(*corev1.Pod) PodOutcome) *FakeKubelet {
	t.Helper()
	if decide == nil {
		decide = func(*corev1.Pod) PodOutcome { return Running() }
	}
	k := &FakeKubelet{client: client, decide: decide, pending: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	inf := factory.Core().V1().Pods().Informer()
	handle := func(obj any) {
		if pod, ok := obj.(*corev1.Pod); ok {
			k.handle(ctx, pod)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    handle,
		UpdateFunc: func(_, obj any) { handle(obj) },
	}); err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.WaitForCacheSync(ctx.Done())
	return k
}

func (k *FakeKubelet) handle(ctx context.Context, pod *corev1.Pod) {
	key := pod.Namespace + "/" + pod.Name + "/" + string(pod.UID)
	if pod.DeletionTimestamp != nil {
		go func() {
			zero := int64(0)
			_ = k.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
				GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		}()
		return
	}
	out := k.decide(pod)
	if out.Skip || out.Phase == "" && pod.Status.Phase == corev1.PodRunning {
		return
	}
	if out.Phase == "" {
		out.Phase = corev1.PodRunning
	}
	if pod.Status.Phase == out.Phase && (out.Phase != corev1.PodRunning || isReady(pod) == out.Ready) {
		return
	}
	k.mu.Lock()
	if k.pending[key] {
		k.mu.Unlock()
		return
	}
	k.pending[key] = true
	k.mu.Unlock()
	go func() {
		defer func() {
			k.mu.Lock()
			delete(k.pending, key)
			k.mu.Unlock()
		}()
		if out.Delay > 0 {
			select {
			case <-time.After(out.Delay):
			case <-ctx.Done():
				return
			}
		}
		k.write(ctx, pod.Namespace, pod.Name, out)
	}()
}

func isReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (k *FakeKubelet) write(ctx context.Context, ns, name string, out PodOutcome) {
	for range 5 {
		pod, err := k.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return
		}
		now := metav1.Now()
		st := &pod.Status
		st.Phase = out.Phase
		if st.StartTime == nil {
			st.StartTime = &now
		}
		if st.PodIP == "" {
			n := k.nextIP.Add(1)
			st.PodIP = fmt.Sprintf("10.244.%d.%d", n/250, n%250+2)
			st.PodIPs = []corev1.PodIP{{IP: st.PodIP}}
			st.HostIP = "10.0.0.1"
		}
		ready := corev1.ConditionFalse
		if out.Phase == corev1.PodRunning && out.Ready {
			ready = corev1.ConditionTrue
		}
		st.Conditions = []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: ready, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: ready, LastTransitionTime: now},
		}
		st.ContainerStatuses = nil
		for _, c := range pod.Spec.Containers {
			cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: ready == corev1.ConditionTrue, Started: ptrTo(true)}
			switch out.Phase {
			case corev1.PodRunning:
				cs.State.Running = &corev1.ContainerStateRunning{StartedAt: now}
			default:
				reason := "Completed"
				if out.ExitCode != 0 {
					reason = "Error"
				}
				cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: out.ExitCode, Reason: reason, StartedAt: *st.StartTime, FinishedAt: now}
				cs.Started = ptrTo(false)
			}
			st.ContainerStatuses = append(st.ContainerStatuses, cs)
		}
		_, err = k.client.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			return
		}
	}
}

func ptrTo[T any](v T) *T { return &v }
