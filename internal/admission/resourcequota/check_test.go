package resourcequota

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"skiff.dev/skiff/internal/admission/resourcequota/usage"
)

func rl(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

// quota is a quota whose status the controller has filled.
func quota(name string, hard, used corev1.ResourceList, scopes ...corev1.ResourceQuotaScope) corev1.ResourceQuota {
	return corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", ResourceVersion: "5"},
		Spec:       corev1.ResourceQuotaSpec{Hard: hard, Scopes: scopes},
		Status:     corev1.ResourceQuotaStatus{Hard: hard, Used: used},
	}
}

func testPod(requests, limits corev1.ResourceList) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns"}, Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "c", Image: "busybox", Resources: corev1.ResourceRequirements{Requests: requests, Limits: limits}}}}}
}

func TestCheck(t *testing.T) {
	pods := schema.GroupResource{Resource: "pods"}
	services := schema.GroupResource{Resource: "services"}
	nodePort := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", ResourceVersion: "3"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}}}
	clusterIP := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", ResourceVersion: "3"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{Port: 80}}}}
	cases := []struct {
		name     string
		quotas   []corev1.ResourceQuota
		gr       schema.GroupResource
		obj, old runtime.Object
		wantErr  string
		wantUsed []string // status.used of each quota afterwards
	}{{
		name:   "fits",
		quotas: []corev1.ResourceQuota{quota("q", rl("pods", "2"), rl("pods", "1"))},
		gr:     pods, obj: testPod(nil, nil),
		wantUsed: []string{"pods=2"},
	}, {
		name:   "pods exceeded",
		quotas: []corev1.ResourceQuota{quota("q", rl("pods", "2"), rl("pods", "2"))},
		gr:     pods, obj: testPod(nil, nil),
		wantErr: "exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2",
	}, {
		name:   "compute exceeded",
		quotas: []corev1.ResourceQuota{quota("compute", rl("requests.cpu", "1", "requests.memory", "1Gi"), rl("requests.cpu", "800m", "requests.memory", "0"))},
		gr:     pods, obj: testPod(rl("cpu", "300m", "memory", "1Gi"), nil),
		wantErr: "exceeded quota: compute, requested: requests.cpu=300m, used: requests.cpu=800m, limited: requests.cpu=1",
	}, {
		name:   "compute fits",
		quotas: []corev1.ResourceQuota{quota("compute", rl("requests.cpu", "1", "limits.memory", "2Gi"), rl("requests.cpu", "500m", "limits.memory", "1Gi"))},
		gr:     pods, obj: testPod(rl("cpu", "500m"), rl("memory", "1Gi")),
		wantUsed: []string{"limits.memory=2Gi,requests.cpu=1"},
	}, {
		name:   "must specify limits",
		quotas: []corev1.ResourceQuota{quota("q", rl("limits.cpu", "4"), rl("limits.cpu", "0"))},
		gr:     pods, obj: testPod(rl("cpu", "1"), nil),
		wantErr: "failed quota: q: must specify limits.cpu for: c",
	}, {
		name:   "status unknown",
		quotas: []corev1.ResourceQuota{quota("q", rl("pods", "2"), nil)},
		gr:     pods, obj: testPod(nil, nil),
		wantErr: "status unknown for quota: q, resources: pods",
	}, {
		name: "quota not yet processed does not apply",
		quotas: []corev1.ResourceQuota{{ObjectMeta: metav1.ObjectMeta{Name: "new", Namespace: "ns"},
			Spec: corev1.ResourceQuotaSpec{Hard: rl("pods", "0")}}},
		gr: pods, obj: testPod(nil, nil), wantUsed: []string{""},
	}, {
		name: "scopes pick the quota",
		quotas: []corev1.ResourceQuota{
			quota("best-effort", rl("pods", "1"), rl("pods", "1"), corev1.ResourceQuotaScopeBestEffort),
			quota("not-best-effort", rl("pods", "5"), rl("pods", "0"), corev1.ResourceQuotaScopeNotBestEffort),
		},
		gr: pods, obj: testPod(rl("cpu", "1"), nil), wantUsed: []string{"pods=1", "pods=1"},
	}, {
		name:   "best effort pod blocked by its scope",
		quotas: []corev1.ResourceQuota{quota("best-effort", rl("pods", "1"), rl("pods", "1"), corev1.ResourceQuotaScopeBestEffort)},
		gr:     pods, obj: testPod(nil, nil),
		wantErr: "exceeded quota: best-effort, requested: pods=1, used: pods=1, limited: pods=1",
	}, {
		name:   "unrelated quota",
		quotas: []corev1.ResourceQuota{quota("q", rl("services", "0"), rl("services", "0"))},
		gr:     pods, obj: testPod(nil, nil),
		wantUsed: []string{"services=0"},
	}, {
		name:   "object count",
		quotas: []corev1.ResourceQuota{quota("q", rl("count/deployments.apps", "2", "configmaps", "1"), rl("count/deployments.apps", "1", "configmaps", "1"))},
		gr:     schema.GroupResource{Group: "apps", Resource: "deployments"}, obj: &corev1.ConfigMap{},
		wantUsed: []string{"configmaps=1,count/deployments.apps=2"},
	}, {
		name:   "legacy object count",
		quotas: []corev1.ResourceQuota{quota("q", rl("configmaps", "1"), rl("configmaps", "1"))},
		gr:     schema.GroupResource{Resource: "configmaps"}, obj: &corev1.ConfigMap{},
		wantErr: "exceeded quota: q, requested: configmaps=1, used: configmaps=1, limited: configmaps=1",
	}, {
		name:   "several resources, one exceeded",
		quotas: []corev1.ResourceQuota{quota("q", rl("services", "5", "services.nodeports", "0"), rl("services", "0", "services.nodeports", "0"))},
		gr:     services, obj: nodePort,
		wantErr:  "exceeded quota: q, requested: services.nodeports=1, used: services.nodeports=0, limited: services.nodeports=0",
		wantUsed: nil,
	}, {
		name:   "update charges the difference",
		quotas: []corev1.ResourceQuota{quota("q", rl("services", "1", "services.nodeports", "1"), rl("services", "1", "services.nodeports", "0"))},
		gr:     services, obj: nodePort, old: clusterIP,
		wantUsed: []string{"services=1,services.nodeports=1"},
	}, {
		name:   "update that releases charges nothing",
		quotas: []corev1.ResourceQuota{quota("q", rl("services", "1", "services.nodeports", "1"), rl("services", "1", "services.nodeports", "1"))},
		gr:     services, obj: clusterIP, old: nodePort,
		wantUsed: []string{"services=1,services.nodeports=1"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := request{obj: tc.obj, old: tc.old, update: tc.old != nil, eval: usage.For(tc.gr), now: time.Now()}
			before := tc.quotas[0].DeepCopy()
			out, err := check(tc.quotas, r)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tc.wantUsed {
				if got := usage.String(out[i].Status.Used); got != w {
					t.Errorf("quota %s used %s, want %s", out[i].Name, got, w)
				}
			}
			if !usage.Equals(before.Status.Used, tc.quotas[0].Status.Used) {
				t.Error("check modified its input")
			}
		})
	}
}

// BenchmarkCheck is the CPU cost admission adds to a pod create in a
// namespace with three quotas (counts, compute, a scoped one).
func BenchmarkCheck(b *testing.B) {
	quotas := []corev1.ResourceQuota{
		quota("count", rl("pods", "1000", "count/configmaps", "10"), rl("pods", "10", "count/configmaps", "1")),
		quota("compute", rl("requests.cpu", "100", "requests.memory", "100Gi", "limits.cpu", "200", "limits.memory", "200Gi"),
			rl("requests.cpu", "1", "requests.memory", "1Gi", "limits.cpu", "2", "limits.memory", "2Gi")),
		quota("best-effort", rl("pods", "10"), rl("pods", "0"), corev1.ResourceQuotaScopeBestEffort),
	}
	r := request{obj: testPod(rl("cpu", "100m", "memory", "64Mi"), rl("cpu", "200m", "memory", "128Mi")),
		eval: usage.For(schema.GroupResource{Resource: "pods"}), now: time.Now()}
	for b.Loop() {
		if _, err := check(quotas, r); err != nil {
			b.Fatal(err)
		}
	}
}
