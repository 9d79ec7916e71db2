package printers

import (
	"errors"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	istionetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istiosecurityv1 "istio.io/client-go/pkg/apis/security/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/randfill"
)

// now is the fixed clock of every cell test; objects are created 5m before.
var (
	now     = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	created = metav1.NewTime(now.Add(-5 * time.Minute))
)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

// kinds lists every kind with its own printer, with a zero object of it, and
// the header kubectl shows against upstream kube-apiserver, without and with
// -o wide. The headers are written down from upstream's
// pkg/printers/internalversion/printers.go, not derived from this package.
var kinds = []struct {
	gk         schema.GroupKind
	zero       func() runtime.Object
	head, wide string
}{
	{gk("", "Pod"), func() runtime.Object { return &corev1.Pod{} },
		"NAME READY STATUS RESTARTS AGE",
		"NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES"},
	{gk("", "PodTemplate"), func() runtime.Object { return &corev1.PodTemplate{} },
		"NAME CONTAINERS IMAGES POD LABELS", "NAME CONTAINERS IMAGES POD LABELS"},
	{gk("", "Namespace"), func() runtime.Object { return &corev1.Namespace{} },
		"NAME STATUS AGE", "NAME STATUS AGE"},
	{gk("", "Service"), func() runtime.Object { return &corev1.Service{} },
		"NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE",
		"NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR"},
	{gk("", "Endpoints"), func() runtime.Object { return &corev1.Endpoints{} },
		"NAME ENDPOINTS AGE", "NAME ENDPOINTS AGE"},
	{gk("", "ConfigMap"), func() runtime.Object { return &corev1.ConfigMap{} },
		"NAME DATA AGE", "NAME DATA AGE"},
	{gk("", "Secret"), func() runtime.Object { return &corev1.Secret{} },
		"NAME TYPE DATA AGE", "NAME TYPE DATA AGE"},
	{gk("", "ServiceAccount"), func() runtime.Object { return &corev1.ServiceAccount{} },
		"NAME SECRETS AGE", "NAME SECRETS AGE"},
	{gk("", "Node"), func() runtime.Object { return &corev1.Node{} },
		"NAME STATUS ROLES AGE VERSION",
		"NAME STATUS ROLES AGE VERSION INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL-VERSION CONTAINER-RUNTIME"},
	{gk("", "Event"), func() runtime.Object { return &corev1.Event{} },
		"LAST SEEN TYPE REASON OBJECT MESSAGE",
		"LAST SEEN TYPE REASON OBJECT SUBOBJECT SOURCE MESSAGE FIRST SEEN COUNT NAME"},
	{gk("", "ReplicationController"), func() runtime.Object { return &corev1.ReplicationController{} },
		"NAME DESIRED CURRENT READY AGE",
		"NAME DESIRED CURRENT READY AGE CONTAINERS IMAGES SELECTOR"},
	{gk("", "ResourceQuota"), func() runtime.Object { return &corev1.ResourceQuota{} },
		"NAME REQUEST LIMIT AGE", "NAME REQUEST LIMIT AGE"},
	{gk("", "PersistentVolume"), func() runtime.Object { return &corev1.PersistentVolume{} },
		"NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS VOLUMEATTRIBUTESCLASS REASON AGE",
		"NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS VOLUMEATTRIBUTESCLASS REASON AGE VOLUMEMODE"},
	{gk("", "PersistentVolumeClaim"), func() runtime.Object { return &corev1.PersistentVolumeClaim{} },
		"NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE",
		"NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE VOLUMEMODE"},
	{gk("apps", "Deployment"), func() runtime.Object { return &appsv1.Deployment{} },
		"NAME READY UP-TO-DATE AVAILABLE AGE",
		"NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR"},
	{gk("apps", "ReplicaSet"), func() runtime.Object { return &appsv1.ReplicaSet{} },
		"NAME DESIRED CURRENT READY AGE",
		"NAME DESIRED CURRENT READY AGE CONTAINERS IMAGES SELECTOR"},
	{gk("apps", "StatefulSet"), func() runtime.Object { return &appsv1.StatefulSet{} },
		"NAME READY AGE",
		"NAME READY AGE CONTAINERS IMAGES"},
	{gk("apps", "DaemonSet"), func() runtime.Object { return &appsv1.DaemonSet{} },
		"NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE",
		"NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE CONTAINERS IMAGES SELECTOR"},
	{gk("apps", "ControllerRevision"), func() runtime.Object { return &appsv1.ControllerRevision{} },
		"NAME CONTROLLER REVISION AGE", "NAME CONTROLLER REVISION AGE"},
	{gk("discovery.k8s.io", "EndpointSlice"), func() runtime.Object { return &discoveryv1.EndpointSlice{} },
		"NAME ADDRESSTYPE PORTS ENDPOINTS AGE", "NAME ADDRESSTYPE PORTS ENDPOINTS AGE"},
	{gk("batch", "Job"), func() runtime.Object { return &batchv1.Job{} },
		"NAME STATUS COMPLETIONS DURATION AGE",
		"NAME STATUS COMPLETIONS DURATION AGE CONTAINERS IMAGES SELECTOR"},
	{gk("batch", "CronJob"), func() runtime.Object { return &batchv1.CronJob{} },
		"NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE",
		"NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE CONTAINERS IMAGES SELECTOR"},
	{gk("autoscaling", "HorizontalPodAutoscaler"), func() runtime.Object { return &autoscalingv2.HorizontalPodAutoscaler{} },
		"NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE",
		"NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE"},
	{gk("networking.k8s.io", "Ingress"), func() runtime.Object { return &networkingv1.Ingress{} },
		"NAME CLASS HOSTS ADDRESS PORTS AGE", "NAME CLASS HOSTS ADDRESS PORTS AGE"},
	{gk("networking.k8s.io", "IngressClass"), func() runtime.Object { return &networkingv1.IngressClass{} },
		"NAME CONTROLLER PARAMETERS AGE", "NAME CONTROLLER PARAMETERS AGE"},
	{gk("networking.k8s.io", "NetworkPolicy"), func() runtime.Object { return &networkingv1.NetworkPolicy{} },
		"NAME POD-SELECTOR AGE", "NAME POD-SELECTOR AGE"},
	{gk("coordination.k8s.io", "Lease"), func() runtime.Object { return &coordinationv1.Lease{} },
		"NAME HOLDER AGE", "NAME HOLDER AGE"},
	{gk("policy", "PodDisruptionBudget"), func() runtime.Object { return &policyv1.PodDisruptionBudget{} },
		"NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE",
		"NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE"},
	{gk("storage.k8s.io", "StorageClass"), func() runtime.Object { return &storagev1.StorageClass{} },
		"NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE",
		"NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE"},
	{gk("scheduling.k8s.io", "PriorityClass"), func() runtime.Object { return &schedulingv1.PriorityClass{} },
		"NAME VALUE GLOBAL-DEFAULT AGE PREEMPTIONPOLICY", "NAME VALUE GLOBAL-DEFAULT AGE PREEMPTIONPOLICY"},
	{gk("node.k8s.io", "RuntimeClass"), func() runtime.Object { return &nodev1.RuntimeClass{} },
		"NAME HANDLER AGE", "NAME HANDLER AGE"},
	{gk("rbac.authorization.k8s.io", "RoleBinding"), func() runtime.Object { return &rbacv1.RoleBinding{} },
		"NAME ROLE AGE", "NAME ROLE AGE USERS GROUPS SERVICEACCOUNTS"},
	{gk("rbac.authorization.k8s.io", "ClusterRoleBinding"), func() runtime.Object { return &rbacv1.ClusterRoleBinding{} },
		"NAME ROLE AGE", "NAME ROLE AGE USERS GROUPS SERVICEACCOUNTS"},
	{gk("certificates.k8s.io", "CertificateSigningRequest"), func() runtime.Object { return &certificatesv1.CertificateSigningRequest{} },
		"NAME AGE SIGNERNAME REQUESTOR REQUESTEDDURATION CONDITION",
		"NAME AGE SIGNERNAME REQUESTOR REQUESTEDDURATION CONDITION"},
	{gk("admissionregistration.k8s.io", "MutatingWebhookConfiguration"), func() runtime.Object { return &admissionregistrationv1.MutatingWebhookConfiguration{} },
		"NAME WEBHOOKS AGE", "NAME WEBHOOKS AGE"},
	{gk("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"), func() runtime.Object { return &admissionregistrationv1.ValidatingWebhookConfiguration{} },
		"NAME WEBHOOKS AGE", "NAME WEBHOOKS AGE"},
	// Istio's CRDs' additionalPrinterColumns.
	{gk("networking.istio.io", "VirtualService"), func() runtime.Object { return &istionetworkingv1.VirtualService{} },
		"NAME GATEWAYS HOSTS AGE", "NAME GATEWAYS HOSTS AGE"},
	{gk("networking.istio.io", "DestinationRule"), func() runtime.Object { return &istionetworkingv1.DestinationRule{} },
		"NAME HOST AGE", "NAME HOST AGE"},
	{gk("networking.istio.io", "Gateway"), func() runtime.Object { return &istionetworkingv1.Gateway{} },
		"NAME AGE", "NAME AGE"},
	{gk("networking.istio.io", "ServiceEntry"), func() runtime.Object { return &istionetworkingv1.ServiceEntry{} },
		"NAME HOSTS LOCATION RESOLUTION AGE", "NAME HOSTS LOCATION RESOLUTION AGE"},
	{gk("networking.istio.io", "Sidecar"), func() runtime.Object { return &istionetworkingv1.Sidecar{} },
		"NAME AGE", "NAME AGE"},
	{gk("security.istio.io", "PeerAuthentication"), func() runtime.Object { return &istiosecurityv1.PeerAuthentication{} },
		"NAME MODE AGE", "NAME MODE AGE"},
	{gk("security.istio.io", "AuthorizationPolicy"), func() runtime.Object { return &istiosecurityv1.AuthorizationPolicy{} },
		"NAME ACTION AGE", "NAME ACTION AGE"},
	{gk("security.istio.io", "RequestAuthentication"), func() runtime.Object { return &istiosecurityv1.RequestAuthentication{} },
		"NAME AGE", "NAME AGE"},
}

func gk(group, kind string) schema.GroupKind { return schema.GroupKind{Group: group, Kind: kind} }

// header renders columns the way kubectl does: names upper-cased, columns
// with a priority above 0 only in wide output.
func header(cols []metav1.TableColumnDefinition, wide bool) string {
	var names []string
	for _, c := range cols {
		if c.Priority == 0 || wide {
			names = append(names, strings.ToUpper(c.Name))
		}
	}
	return strings.Join(names, " ")
}

func TestHeaders(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.gk.String(), func(t *testing.T) {
			p := For(k.gk)
			if got := header(p.Columns, false); got != k.head {
				t.Errorf("header\n got %q\nwant %q", got, k.head)
			}
			if got := header(p.Columns, true); got != k.wide {
				t.Errorf("wide header\n got %q\nwant %q", got, k.wide)
			}
			for _, c := range p.Columns {
				switch c.Type {
				case "string", "integer", "boolean", "date":
				default:
					t.Errorf("column %q has type %q", c.Name, c.Type)
				}
			}
		})
	}
}

// Every registered printer must be in kinds, so it is checked above.
func TestEveryPrinterHasHeaderCase(t *testing.T) {
	listed := map[schema.GroupKind]bool{}
	for _, k := range kinds {
		listed[k.gk] = true
	}
	for gk := range byKind {
		if !listed[gk] {
			t.Errorf("%v has a printer but no header case", gk)
		}
	}
}

func TestDefault(t *testing.T) {
	// Kinds upstream prints with its default convertor.
	for _, k := range []schema.GroupKind{
		gk("rbac.authorization.k8s.io", "ClusterRole"), gk("rbac.authorization.k8s.io", "Role"),
		gk("", "LimitRange"), gk("example.com", "Widget"),
	} {
		if got, want := header(For(k).Columns, true), "NAME CREATED AT"; got != want {
			t.Errorf("%v: header %q, want %q", k, got, want)
		}
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "admin", CreationTimestamp: created}}
	got, err := Default().Cells(role, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := []any{"admin", "2026-03-01T11:55:00Z"}; !reflect.DeepEqual(got, want) {
		t.Errorf("cells %#v, want %#v", got, want)
	}
	for _, bad := range []runtime.Object{nil, (*rbacv1.Role)(nil), &metav1.Status{}} {
		if _, err := Default().Cells(bad, now); !errors.Is(err, ErrWrongType) {
			t.Errorf("Cells(%#v): err %v, want ErrWrongType", bad, err)
		}
	}
}

func TestWrongType(t *testing.T) {
	p := For(gk("apps", "Deployment"))
	for _, bad := range []runtime.Object{nil, &corev1.Pod{}, (*appsv1.Deployment)(nil)} {
		if _, err := p.Cells(bad, now); !errors.Is(err, ErrWrongType) {
			t.Errorf("Cells(%#v): err %v, want ErrWrongType", bad, err)
		}
	}
}

// TestCellsShape feeds every printer a zero object and many randomly filled
// ones: none may panic, every row has one cell per column, and every cell is
// a string, int64 or bool.
func TestCellsShape(t *testing.T) {
	filler := randfill.New().NilChance(0.3).NumElements(0, 4).MaxDepth(12).RandSource(rand.NewSource(1)).Funcs(
		func(r *runtime.RawExtension, c randfill.Continue) { r.Raw = []byte("{}") },
		func(tm *metav1.Time, c randfill.Continue) {
			*tm = metav1.NewTime(now.Add(-time.Duration(c.Int63n(int64(400 * 24 * time.Hour)))))
		},
		func(tm *metav1.MicroTime, c randfill.Continue) {
			*tm = metav1.NewMicroTime(now.Add(-time.Duration(c.Int63n(int64(48 * time.Hour)))))
		},
		func(q *resource.Quantity, c randfill.Continue) {
			*q = *resource.NewMilliQuantity(c.Int63n(1<<40), resource.DecimalSI)
		},
	)
	for _, k := range kinds {
		t.Run(k.gk.String(), func(t *testing.T) {
			p := For(k.gk)
			check := func(obj runtime.Object) {
				t.Helper()
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("panic on %#v: %v", obj, r)
					}
				}()
				cells, err := p.Cells(obj, now)
				if err != nil {
					t.Fatal(err)
				}
				if len(cells) != len(p.Columns) {
					t.Fatalf("%d cells for %d columns: %#v", len(cells), len(p.Columns), cells)
				}
				for i, c := range cells {
					switch c.(type) {
					case string, int64, bool:
					default:
						t.Fatalf("cell %d (%s) is %T", i, p.Columns[i].Name, c)
					}
				}
			}
			check(k.zero())
			for range 200 {
				obj := k.zero()
				if strings.HasSuffix(k.gk.Group, ".istio.io") {
					// Istio's specs are protobuf messages randfill cannot
					// fill; TestIstioCells covers their cells.
					filler.Fill(reflect.ValueOf(obj).Elem().FieldByName("ObjectMeta").Addr().Interface())
				} else {
					filler.Fill(obj)
				}
				check(obj)
			}
		})
	}
}

// cells runs the printer of gk over obj.
func cells(t *testing.T, gk schema.GroupKind, obj runtime.Object) []any {
	t.Helper()
	got, err := For(gk).Cells(obj, now)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func checkRow(t *testing.T, got, want []any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cells\n got %#v\nwant %#v", got, want)
	}
}
