package printers

import (
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestNodeCells(t *testing.T) {
	ready := func(s corev1.ConditionStatus) []corev1.NodeCondition {
		return []corev1.NodeCondition{
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
			{Type: corev1.NodeReady, Status: s},
		}
	}
	tests := []struct {
		name          string
		labels        map[string]string
		unschedulable bool
		conditions    []corev1.NodeCondition
		want          []any // Status, Roles
	}{
		{"ready", nil, false, ready(corev1.ConditionTrue), []any{"Ready", "<none>"}},
		{"cordoned", nil, true, ready(corev1.ConditionTrue), []any{"Ready,SchedulingDisabled", "<none>"}},
		{"not ready", nil, false, ready(corev1.ConditionUnknown), []any{"NotReady", "<none>"}},
		{"never reported", nil, true, nil, []any{"Unknown,SchedulingDisabled", "<none>"}},
		{
			"roles",
			map[string]string{"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "true",
				"kubernetes.io/role": "master", "node-role.kubernetes.io/": "", "kubernetes.io/hostname": "n1"},
			false, ready(corev1.ConditionTrue),
			[]any{"Ready", "control-plane,etcd,master"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: tt.labels, CreationTimestamp: created},
				Spec:       corev1.NodeSpec{Unschedulable: tt.unschedulable},
				Status: corev1.NodeStatus{Conditions: tt.conditions,
					Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "n1"}, {Type: corev1.NodeInternalIP, Address: "192.168.1.10"}},
					NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", OSImage: "Debian GNU/Linux 13",
						KernelVersion: "6.12.0", ContainerRuntimeVersion: "skiff://0.1.0"},
				},
			}
			checkRow(t, cells(t, gk("", "Node"), n), []any{"n1", tt.want[0], tt.want[1], "5m", "v1.37.2",
				"192.168.1.10", "<none>", "Debian GNU/Linux 13", "6.12.0", "skiff://0.1.0"})
		})
	}
	checkRow(t, cells(t, gk("", "Node"), &corev1.Node{}),
		[]any{"", "Unknown", "<none>", "<unknown>", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"})
}

func TestEventCells(t *testing.T) {
	core := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web.1", CreationTimestamp: created},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web", FieldPath: "spec.containers{app}"},
		Reason:         "BackOff", Type: corev1.EventTypeWarning, Message: "Back-off restarting failed container\n",
		Source:         corev1.EventSource{Component: "kubelet", Host: "n1"},
		FirstTimestamp: ago(10 * time.Minute), LastTimestamp: ago(30 * time.Second), Count: 7,
	}
	checkRow(t, cells(t, gk("", "Event"), core), []any{"30s", "Warning", "BackOff", "pod/web", "spec.containers{app}",
		"kubelet, n1", "Back-off restarting failed container", "10m", int64(7), "web.1"})

	series := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "x.2"},
		InvolvedObject:      corev1.ObjectReference{Kind: "Node"},
		EventTime:           metav1.NewMicroTime(now.Add(-time.Hour)),
		Series:              &corev1.EventSeries{Count: 3, LastObservedTime: metav1.NewMicroTime(now.Add(-2 * time.Minute))},
		ReportingController: "skiff.dev/scheduler", Type: corev1.EventTypeNormal,
	}
	checkRow(t, cells(t, gk("", "Event"), series), []any{"2m", "Normal", "", "node", "", "skiff.dev/scheduler", "", "60m", int64(3), "x.2"})

	single := &corev1.Event{EventTime: metav1.NewMicroTime(now.Add(-3 * time.Second)), ReportingInstance: "n2"}
	checkRow(t, cells(t, gk("", "Event"), single), []any{"3s", "", "", "", "", ", n2", "", "3s", int64(1), ""})
}

func TestConfigCells(t *testing.T) {
	meta := metav1.ObjectMeta{Name: "c", CreationTimestamp: created}
	checkRow(t, cells(t, gk("", "ConfigMap"), &corev1.ConfigMap{ObjectMeta: meta,
		Data: map[string]string{"a": "1", "b": "2"}, BinaryData: map[string][]byte{"c": nil}}),
		[]any{"c", int64(3), "5m"})
	checkRow(t, cells(t, gk("", "Secret"), &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{"user": nil, "pass": nil}, StringData: map[string]string{"pass": "x", "token": "y"}}),
		[]any{"c", "Opaque", int64(3), "5m"})
	checkRow(t, cells(t, gk("", "ServiceAccount"), &corev1.ServiceAccount{ObjectMeta: meta,
		Secrets: []corev1.ObjectReference{{Name: "c-token"}}}),
		[]any{"c", int64(1), "5m"})
	checkRow(t, cells(t, gk("", "Namespace"), &corev1.Namespace{ObjectMeta: meta, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}),
		[]any{"c", "Terminating", "5m"})

	q := func(s string) resource.Quantity { return resource.MustParse(s) }
	checkRow(t, cells(t, gk("", "ResourceQuota"), &corev1.ResourceQuota{ObjectMeta: meta, Status: corev1.ResourceQuotaStatus{
		Hard: corev1.ResourceList{"requests.cpu": q("2"), "pods": q("10"), "limits.memory": q("4Gi"), "limits.cpu": q("4")},
		Used: corev1.ResourceList{"requests.cpu": q("500m"), "pods": q("3"), "limits.memory": q("1Gi")},
	}}), []any{"c", "pods: 3/10, requests.cpu: 500m/2", "limits.cpu: 0/4, limits.memory: 1Gi/4Gi", "5m"})

	checkRow(t, cells(t, gk("coordination.k8s.io", "Lease"), &coordinationv1.Lease{ObjectMeta: meta,
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("skiff-1")}}), []any{"c", "skiff-1", "5m"})
	checkRow(t, cells(t, gk("coordination.k8s.io", "Lease"), &coordinationv1.Lease{ObjectMeta: meta}), []any{"c", "", "5m"})

	checkRow(t, cells(t, gk("scheduling.k8s.io", "PriorityClass"), &schedulingv1.PriorityClass{ObjectMeta: meta, Value: 2000001000,
		PreemptionPolicy: ptr.To(corev1.PreemptLowerPriority)}), []any{"c", int64(2000001000), false, "5m", "PreemptLowerPriority"})
}

func TestStorageCells(t *testing.T) {
	meta := metav1.ObjectMeta{Name: "s", CreationTimestamp: created}
	fs := corev1.PersistentVolumeFilesystem
	pv := &corev1.PersistentVolume{ObjectMeta: meta,
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod, corev1.ReadWriteOnce, corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			ClaimRef:                      &corev1.ObjectReference{Namespace: "default", Name: "data"},
			StorageClassName:              "local", VolumeMode: &fs,
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
	}
	checkRow(t, cells(t, gk("", "PersistentVolume"), pv),
		[]any{"s", "10Gi", "RWO,RWOP", "Retain", "Bound", "default/data", "local", "<unset>", "", "5m", "Filesystem"})

	pending := &corev1.PersistentVolumeClaim{ObjectMeta: meta, Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("local")},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}}
	checkRow(t, cells(t, gk("", "PersistentVolumeClaim"), pending),
		[]any{"s", "Pending", "", "", "", "local", "<unset>", "5m", "<unset>"})
	bound := pending.DeepCopy()
	bound.Annotations = map[string]string{"volume.beta.kubernetes.io/storage-class": "old"}
	bound.Spec.VolumeName = "pv-1"
	bound.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound,
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadOnlyMany},
		Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}
	checkRow(t, cells(t, gk("", "PersistentVolumeClaim"), bound),
		[]any{"s", "Bound", "pv-1", "1Gi", "ROX,RWX", "old", "<unset>", "5m", "<unset>"})

	sc := &storagev1.StorageClass{ObjectMeta: meta, Provisioner: "skiff.dev/local"}
	sc.Annotations = map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}
	checkRow(t, cells(t, gk("storage.k8s.io", "StorageClass"), sc),
		[]any{"s (default)", "skiff.dev/local", "Delete", "Immediate", false, "5m"})
}

func TestAccessCells(t *testing.T) {
	meta := metav1.ObjectMeta{Name: "a", CreationTimestamp: created}
	rb := &rbacv1.RoleBinding{ObjectMeta: meta,
		RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{
			{Kind: rbacv1.UserKind, Name: "alice"}, {Kind: rbacv1.UserKind, Name: "bob"},
			{Kind: rbacv1.GroupKind, Name: "devs"},
			{Kind: rbacv1.ServiceAccountKind, Namespace: "ci", Name: "runner"},
		}}
	checkRow(t, cells(t, gk("rbac.authorization.k8s.io", "RoleBinding"), rb),
		[]any{"a", "ClusterRole/view", "5m", "alice, bob", "devs", "ci/runner"})

	csr := &certificatesv1.CertificateSigningRequest{ObjectMeta: meta,
		Spec: certificatesv1.CertificateSigningRequestSpec{SignerName: "kubernetes.io/kube-apiserver-client",
			Username: "alice", ExpirationSeconds: ptr.To[int32](86400)},
		Status: certificatesv1.CertificateSigningRequestStatus{
			Conditions:  []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved}},
			Certificate: []byte("pem"),
		}}
	checkRow(t, cells(t, gk("certificates.k8s.io", "CertificateSigningRequest"), csr),
		[]any{"a", "5m", "kubernetes.io/kube-apiserver-client", "alice", "24h", "Approved,Issued"})
}
