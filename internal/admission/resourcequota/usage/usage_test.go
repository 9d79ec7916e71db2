package usage

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func rl(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func container(name string, requests, limits corev1.ResourceList) corev1.Container {
	return corev1.Container{Name: name, Image: "busybox", Resources: corev1.ResourceRequirements{Requests: requests, Limits: limits}}
}

func pod(edit ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{container("c", nil, nil)}}}
	for _, e := range edit {
		e(p)
	}
	return p
}

func TestUsage(t *testing.T) {
	cases := []struct {
		name string
		gr   schema.GroupResource
		obj  runtime.Object
		want string
	}{
		{name: "best-effort pod", gr: gr("", "pods"), obj: pod(), want: "count/pods=1,pods=1"},
		{name: "pod with requests and limits", gr: gr("", "pods"), obj: pod(func(p *corev1.Pod) {
			p.Spec.Containers = []corev1.Container{
				container("a", rl("cpu", "250m", "memory", "64Mi"), rl("cpu", "500m", "memory", "128Mi")),
				container("b", rl("cpu", "250m", "ephemeral-storage", "1Gi"), nil),
			}
		}), want: "count/pods=1,cpu=500m,ephemeral-storage=1Gi,limits.cpu=500m,limits.memory=128Mi,memory=64Mi,pods=1," +
			"requests.cpu=500m,requests.ephemeral-storage=1Gi,requests.memory=64Mi"},
		{name: "init container max", gr: gr("", "pods"), obj: pod(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{container("i", rl("cpu", "2"), nil)}
			p.Spec.Containers = []corev1.Container{container("a", rl("cpu", "1"), nil)}
		}), want: "count/pods=1,cpu=2,pods=1,requests.cpu=2"},
		{name: "extended resource and hugepages", gr: gr("", "pods"), obj: pod(func(p *corev1.Pod) {
			p.Spec.Containers = []corev1.Container{container("a", rl("example.com/gpu", "1", "hugepages-2Mi", "4Mi", "cpu", "1"), rl("example.com/gpu", "1", "hugepages-2Mi", "4Mi"))}
		}), want: "count/pods=1,cpu=1,hugepages-2Mi=4Mi,pods=1,requests.cpu=1,requests.example.com/gpu=1,requests.hugepages-2Mi=4Mi"},
		{name: "succeeded pod", gr: gr("", "pods"), obj: pod(func(p *corev1.Pod) {
			p.Spec.Containers = []corev1.Container{container("a", rl("cpu", "1"), nil)}
			p.Status.Phase = corev1.PodSucceeded
		}), want: "count/pods=1"},
		{name: "pod past its grace period", gr: gr("", "pods"), obj: pod(func(p *corev1.Pod) {
			p.DeletionTimestamp = &metav1.Time{Time: now.Add(-time.Minute)}
			p.DeletionGracePeriodSeconds = ptr.To[int64](30)
		}), want: "count/pods=1"},
		{name: "pod within its grace period", gr: gr("", "pods"), obj: pod(func(p *corev1.Pod) {
			p.DeletionTimestamp = &metav1.Time{Time: now}
			p.DeletionGracePeriodSeconds = ptr.To[int64](30)
		}), want: "count/pods=1,pods=1"},
		{name: "cluster IP service", gr: gr("", "services"), obj: &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}},
			want: "count/services=1,services=1,services.loadbalancers=0,services.nodeports=0"},
		{name: "node port service", gr: gr("", "services"), obj: &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort,
			Ports: []corev1.ServicePort{{Port: 80}, {Port: 443}}}},
			want: "count/services=1,services=1,services.loadbalancers=0,services.nodeports=2"},
		{name: "load balancer", gr: gr("", "services"), obj: &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Port: 80}}}},
			want: "count/services=1,services=1,services.loadbalancers=1,services.nodeports=1"},
		{name: "load balancer without node ports", gr: gr("", "services"), obj: &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			AllocateLoadBalancerNodePorts: ptr.To(false), Ports: []corev1.ServicePort{{Port: 80}, {Port: 81, NodePort: 30001}}}},
			want: "count/services=1,services=1,services.loadbalancers=1,services.nodeports=1"},
		{name: "claim", gr: gr("", "persistentvolumeclaims"), obj: &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To("gold"), Resources: corev1.VolumeResourceRequirements{Requests: rl("storage", "1Gi")}}},
			want: "count/persistentvolumeclaims=1,gold.storageclass.storage.k8s.io/persistentvolumeclaims=1," +
				"gold.storageclass.storage.k8s.io/requests.storage=1Gi,persistentvolumeclaims=1,requests.storage=1Gi"},
		{name: "expanded claim", gr: gr("", "persistentvolumeclaims"), obj: &corev1.PersistentVolumeClaim{
			Spec:   corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{Requests: rl("storage", "1Gi")}},
			Status: corev1.PersistentVolumeClaimStatus{AllocatedResources: rl("storage", "2Gi")}},
			want: "count/persistentvolumeclaims=1,persistentvolumeclaims=1,requests.storage=2Gi"},
		{name: "config map", gr: gr("", "configmaps"), obj: &corev1.ConfigMap{}, want: "configmaps=1,count/configmaps=1"},
		{name: "deployment", gr: gr("apps", "deployments"), obj: &corev1.ConfigMap{}, want: "count/deployments.apps=1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := For(tc.gr).Usage(tc.obj, now)
			if err != nil {
				t.Fatal(err)
			}
			if s := String(got); s != tc.want {
				t.Errorf("usage %s\nwant  %s", s, tc.want)
			}
		})
	}
}

func gr(group, res string) schema.GroupResource {
	return schema.GroupResource{Group: group, Resource: res}
}

func TestWrongTypeIsAnError(t *testing.T) {
	for _, r := range []string{"pods", "services", "persistentvolumeclaims"} {
		e := For(gr("", r))
		if _, err := e.Usage(&corev1.ConfigMap{}, now); err == nil {
			t.Errorf("%s: no error for a ConfigMap", r)
		}
		if _, err := e.Usage((*corev1.Pod)(nil), now); err == nil && r != "pods" {
			t.Errorf("%s: no error for a nil pod", r)
		}
	}
	if _, err := For(gr("", "pods")).Usage((*corev1.Pod)(nil), now); err == nil {
		t.Error("no error for a nil pod")
	}
}

func TestMatchingResources(t *testing.T) {
	names := []corev1.ResourceName{"pods", "requests.cpu", "services", "services.nodeports", "configmaps", "count/deployments.apps",
		"requests.storage", "gold.storageclass.storage.k8s.io/requests.storage", "requests.example.com/gpu", "requests.hugepages-2Mi", "count/pods"}
	cases := []struct {
		gr   schema.GroupResource
		want string
	}{
		{gr("", "pods"), "pods,requests.cpu,count/pods,requests.example.com/gpu,requests.hugepages-2Mi"},
		{gr("", "services"), "services,services.nodeports"},
		{gr("", "configmaps"), "configmaps"},
		{gr("apps", "deployments"), "count/deployments.apps"},
		{gr("", "persistentvolumeclaims"), "requests.storage,gold.storageclass.storage.k8s.io/requests.storage"},
		{gr("", "secrets"), ""},
	}
	for _, tc := range cases {
		got := For(tc.gr).MatchingResources(names)
		var s []string
		for _, n := range got {
			s = append(s, string(n))
		}
		if strings.Join(s, ",") != tc.want {
			t.Errorf("%v: %v, want %s", tc.gr, s, tc.want)
		}
	}
}

func TestGroupResources(t *testing.T) {
	got := GroupResources([]corev1.ResourceName{"count/jobs.batch", "requests.cpu", "secrets", "count/secrets", "services.loadbalancers"})
	var s []string
	for _, g := range got {
		s = append(s, g.String())
	}
	if want := "jobs.batch,secrets,pods,services"; strings.Join(s, ",") != want {
		t.Errorf("%v, want %s", s, want)
	}
	if _, ok := ParseCountName("count/"); ok {
		t.Error("count/ parsed")
	}
	if g, ok := ParseCountName("count/deployments.apps"); !ok || g != gr("apps", "deployments") {
		t.Errorf("parsed %v", g)
	}
}

func TestScopes(t *testing.T) {
	burstable := pod(func(p *corev1.Pod) { p.Spec.Containers[0].Resources.Requests = rl("cpu", "1") })
	deadline := pod(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To[int64](60) })
	high := pod(func(p *corev1.Pod) { p.Spec.PriorityClassName = "high" })
	cross := pod(func(p *corev1.Pod) {
		p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{
			{TopologyKey: "x", Namespaces: []string{"other"}}}}}
	})
	exists := func(s corev1.ResourceQuotaScope) corev1.ScopedResourceSelectorRequirement {
		return corev1.ScopedResourceSelectorRequirement{ScopeName: s, Operator: corev1.ScopeSelectorOpExists}
	}
	pc := func(op corev1.ScopeSelectorOperator, v ...string) corev1.ScopedResourceSelectorRequirement {
		return corev1.ScopedResourceSelectorRequirement{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: op, Values: v}
	}
	cases := []struct {
		name string
		sel  corev1.ScopedResourceSelectorRequirement
		pod  *corev1.Pod
		want bool
	}{
		{"best effort", exists(corev1.ResourceQuotaScopeBestEffort), pod(), true},
		{"burstable is not best effort", exists(corev1.ResourceQuotaScopeBestEffort), burstable, false},
		{"not best effort", exists(corev1.ResourceQuotaScopeNotBestEffort), burstable, true},
		{"terminating", exists(corev1.ResourceQuotaScopeTerminating), deadline, true},
		{"not terminating", exists(corev1.ResourceQuotaScopeNotTerminating), deadline, false},
		{"priority class exists", pc(corev1.ScopeSelectorOpExists), high, true},
		{"priority class in", pc(corev1.ScopeSelectorOpIn, "high", "medium"), high, true},
		{"priority class not in", pc(corev1.ScopeSelectorOpNotIn, "high"), high, false},
		{"no priority class not in", pc(corev1.ScopeSelectorOpNotIn, "high"), pod(), true},
		{"priority class does not exist", pc(corev1.ScopeSelectorOpDoesNotExist), pod(), true},
		{"cross-namespace affinity", exists(corev1.ResourceQuotaScopeCrossNamespacePodAffinity), cross, true},
		{"no cross-namespace affinity", exists(corev1.ResourceQuotaScopeCrossNamespacePodAffinity), pod(), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := For(gr("", "pods")).MatchesScope(tc.sel, tc.pod)
			if err != nil || got != tc.want {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if ok, _ := For(gr("", "configmaps")).MatchesScope(exists(corev1.ResourceQuotaScopeBestEffort), &corev1.ConfigMap{}); ok {
		t.Error("a scope matched a config map")
	}
}

func TestConstraints(t *testing.T) {
	p := pod(func(p *corev1.Pod) {
		p.Spec.Containers = []corev1.Container{container("b", rl("cpu", "1"), nil), container("a", nil, rl("memory", "1Gi"))}
		p.Spec.InitContainers = []corev1.Container{container("init", rl("cpu", "1"), rl("cpu", "1"))}
	})
	e := For(gr("", "pods"))
	cases := []struct {
		required []corev1.ResourceName
		want     string
	}{
		{[]corev1.ResourceName{"pods"}, ""},
		{[]corev1.ResourceName{"requests.cpu"}, "must specify requests.cpu for: a"},
		{[]corev1.ResourceName{"limits.cpu", "limits.memory"}, "must specify limits.cpu for: a,b; limits.memory for: b,init"},
		{[]corev1.ResourceName{"requests.storage"}, ""},
	}
	for _, tc := range cases {
		err := e.Constraints(tc.required, p)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%v: %q, want %q", tc.required, got, tc.want)
		}
	}
}

func TestLists(t *testing.T) {
	a, b := rl("cpu", "1", "pods", "2"), rl("cpu", "500m", "memory", "1Gi")
	if s := String(Add(a, b)); s != "cpu=1500m,memory=1Gi,pods=2" {
		t.Errorf("add %s", s)
	}
	if s := String(SubtractNonNegative(b, a)); s != "cpu=0,memory=1Gi" {
		t.Errorf("subtract %s", s)
	}
	if ok, ex := LessThanOrEqual(rl("cpu", "2", "pods", "1", "x", "9"), a); ok || len(ex) != 1 || ex[0] != "cpu" {
		t.Errorf("lessThanOrEqual %v %v", ok, ex)
	}
	if !Equals(rl("cpu", "1000m"), rl("cpu", "1")) || Equals(a, b) {
		t.Error("equals")
	}
	if s := String(RemoveZeros(rl("a", "0", "b", "1"))); s != "b=1" {
		t.Errorf("removeZeros %s", s)
	}
	if s := String(Mask(a, []corev1.ResourceName{"pods", "nope"})); s != "pods=2" {
		t.Errorf("mask %s", s)
	}
}
