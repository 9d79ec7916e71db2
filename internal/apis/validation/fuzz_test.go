package validation

import (
	"encoding/json"
	"hash/crc32"
	"math/rand"
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/randfill"
	"sigs.k8s.io/yaml"

	"skiff.dev/skiff/internal/apis/autoscaling"
	"skiff.dev/skiff/internal/apis/defaults"
)

// The fuzz targets decode arbitrary JSON into one kind, the way the API
// server decodes a request body, and run it through defaulting and create
// and update validation in both directions. Nothing a client sends may
// panic them, defaulting must be idempotent and validation must leave the
// objects alone. Inputs that are not JSON
// for the kind instead seed a random but well-formed object (see
// fillFromBytes), which reaches far more of the code than mutated JSON
// does. Run one with, e.g.,
//
//	go test ./internal/apis/validation -run '^$' -fuzz '^FuzzDeployment$' -fuzztime 30s -fuzzminimizetime 5s

func FuzzPod(f *testing.F) { fuzzKind[corev1.Pod](f, podDoc) }
func FuzzService(f *testing.F) {
	fuzzKind[corev1.Service](f, serviceDoc, `{"spec":{"type":"ExternalName"}}`)
}
func FuzzEndpoints(f *testing.F) {
	fuzzKind[corev1.Endpoints](f, `{"subsets":[{"addresses":[{"ip":"10.0.0.1"}],"ports":[{"port":80}]}]}`)
}
func FuzzConfigMap(f *testing.F) {
	fuzzKind[corev1.ConfigMap](f, `{"immutable":true,"data":{"a":"b"}}`)
}
func FuzzSecret(f *testing.F) {
	fuzzKind[corev1.Secret](f, `{"type":"kubernetes.io/tls","stringData":{"tls.crt":"x"}}`)
}
func FuzzServiceAccount(f *testing.F) {
	fuzzKind[corev1.ServiceAccount](f, `{"metadata":{"name":"sa"}}`)
}
func FuzzNamespace(f *testing.F) { fuzzKind[corev1.Namespace](f, `{"metadata":{"name":"ns"}}`) }
func FuzzNode(f *testing.F) {
	fuzzKind[corev1.Node](f, `{"spec":{"podCIDRs":["10.0.0.0/24","fd00::/64"]},"status":{"capacity":{"cpu":"4"}}}`)
}
func FuzzEvent(f *testing.F)       { fuzzKind[corev1.Event](f, eventDoc) }
func FuzzDeployment(f *testing.F)  { fuzzKind[appsv1.Deployment](f, deploymentDoc) }
func FuzzReplicaSet(f *testing.F)  { fuzzKind[appsv1.ReplicaSet](f, replicaSetDoc) }
func FuzzStatefulSet(f *testing.F) { fuzzKind[appsv1.StatefulSet](f, statefulSetDoc) }
func FuzzDaemonSet(f *testing.F)   { fuzzKind[appsv1.DaemonSet](f, daemonSetDoc) }
func FuzzJob(f *testing.F)         { fuzzKind[batchv1.Job](f, jobDoc) }
func FuzzCronJob(f *testing.F) {
	fuzzKind[batchv1.CronJob](f, cronJobDoc, `{"spec":{"schedule":"TZ=Europe/Berlin 5-10/2 * ? JAN *"}}`)
}
func FuzzHorizontalPodAutoscaler(f *testing.F) {
	fuzzKind[autoscalingv2.HorizontalPodAutoscaler](f, hpaDoc, `{"spec":{"behavior":{"scaleDown":{"policies":[]}}}}`)
}
func FuzzHorizontalPodAutoscalerV1(f *testing.F) {
	fuzzKind[autoscalingv1.HorizontalPodAutoscaler](f,
		`{"metadata":{"annotations":{"autoscaling.alpha.kubernetes.io/metrics":"[{\"type\":\"Object\",\"object\":{}}]"}}}`)
}
func FuzzIngress(f *testing.F) { fuzzKind[networkingv1.Ingress](f, ingressDoc) }
func FuzzIngressClass(f *testing.F) {
	fuzzKind[networkingv1.IngressClass](f, `{"spec":{"parameters":{"scope":"Namespace"}}}`)
}
func FuzzNetworkPolicy(f *testing.F) { fuzzKind[networkingv1.NetworkPolicy](f, networkPolicyDoc) }
func FuzzEndpointSlice(f *testing.F) { fuzzKind[discoveryv1.EndpointSlice](f, endpointSliceDoc) }
func FuzzLease(f *testing.F) {
	fuzzKind[coordinationv1.Lease](f, `{"spec":{"strategy":"x","preferredHolder":"y"}}`)
}
func FuzzPodDisruptionBudget(f *testing.F) {
	fuzzKind[policyv1.PodDisruptionBudget](f, `{"spec":{"minAvailable":"50%","maxUnavailable":1}}`)
}

// fuzzKind registers seeds (YAML or JSON documents) and the fuzz function
// for kind T. Each input is a new and an old object.
func fuzzKind[T any, P interface {
	*T
	runtime.Object
}](f *testing.F, seeds ...string) {
	f.Helper()
	var bases []P
	for _, seed := range seeds {
		doc, err := yaml.YAMLToJSON([]byte(seed))
		if err != nil {
			f.Fatal(err)
		}
		base := P(new(T))
		if err := kjson.UnmarshalCaseSensitivePreserveInts(doc, base); err != nil {
			f.Fatal(err)
		}
		bases = append(bases, base)
		f.Add(doc, []byte("{}"))
		f.Add(doc, doc)
	}
	f.Fuzz(func(t *testing.T, newDoc, oldDoc []byte) {
		obj, ok := decodeOrFill(newDoc, bases)
		if !ok {
			return
		}
		old, ok := decodeOrFill(oldDoc, bases)
		if !ok {
			old = obj.DeepCopyObject().(P)
		}
		for _, o := range []P{obj, old} {
			defaults.Default(o)
			once := mustMarshal(t, o)
			defaults.Default(o)
			if twice := mustMarshal(t, o); twice != once {
				t.Fatalf("defaulting is not idempotent:\n%s\nthen\n%s", once, twice)
			}
		}
		before := mustMarshal(t, obj) + mustMarshal(t, old)
		render(ValidateCreate(obj))
		render(ValidateCreate(old))
		render(ValidateUpdate(obj, old))
		render(ValidateUpdate(old, obj))
		if after := mustMarshal(t, obj) + mustMarshal(t, old); after != before {
			t.Fatalf("validation modified its arguments:\n%s\nbecame\n%s", before, after)
		}
		switch o := any(obj).(type) {
		case *autoscalingv1.HorizontalPodAutoscaler:
			render(ValidateCreate(autoscaling.V1ToV2(autoscaling.V2ToV1(autoscaling.V1ToV2(o)))))
		case *autoscalingv2.HorizontalPodAutoscaler:
			render(ValidateCreate(autoscaling.V1ToV2(autoscaling.V2ToV1(o))))
		}
	})
}

// render formats every error, as the API server will.
func render(errs field.ErrorList) {
	for _, e := range errs {
		_ = e.Error()
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encoding defaulted object: %v", err)
	}
	return string(b)
}

// decodeOrFill decodes doc as the API server would. When doc is not a JSON
// object of the kind, it builds one from doc's bytes instead: either a
// perturbed copy of one of the seed objects (mostly valid, so the deeper
// checks run) or a randomly filled one. A built object goes through JSON
// once so that it holds only what a client could have sent.
func decodeOrFill[T any, P interface {
	*T
	runtime.Object
}](doc []byte, bases []P) (P, bool) {
	obj := P(new(T))
	if kjson.UnmarshalCaseSensitivePreserveInts(doc, obj) == nil {
		return obj, true
	}
	built := P(new(T))
	r := rand.New(rand.NewSource(int64(crc32.ChecksumIEEE(doc))))
	if len(bases) > 0 && r.Intn(2) == 0 {
		built = bases[r.Intn(len(bases))].DeepCopyObject().(P)
		perturb(reflect.ValueOf(built).Elem(), r, newFiller(doc, r), 0)
	} else {
		newFiller(doc, r).Fill(built)
		pickStrings(reflect.ValueOf(built), r)
	}
	data, err := json.Marshal(built)
	if err != nil {
		return nil, false
	}
	obj = P(new(T))
	if kjson.UnmarshalCaseSensitivePreserveInts(data, obj) != nil {
		return nil, false
	}
	return obj, true
}

// fuzzStrings are values that steer random objects into the interesting
// branches: enum values of the served kinds, names, addresses, schedules,
// percentages and paths, valid and not.
var fuzzStrings = []string{
	"", "a", "web", "Web", "a.b", "a_b", "-a", "app", "x/y", "example.com/gpu", "kubernetes", "None",
	"10.0.0.1", "fd00::1", "127.0.0.1", "0.0.0.0", "10.0.0.0/8", "10.1.0.0/16", "fd00::/64", "web.example.com", "*.example.com",
	"0", "1", "-1", "25%", "110%", "1k", "500m", "/", "/a//b", "api", "..", "a/../b",
	"*/5 * * * *", "@hourly", "@every 1m", "TZ=UTC 0 0 * * *", "TZ=", "61 * * * *", "Europe/Berlin", "Local",
	"Always", "OnFailure", "Never", "IfNotPresent", "File", "FallbackToLogsOnError",
	"ClusterFirst", "ClusterFirstWithHostNet", "Default", "TCP", "UDP", "SCTP", "HTTP", "HTTPS",
	"ClusterIP", "NodePort", "LoadBalancer", "ExternalName", "Cluster", "Local", "ClientIP",
	"SingleStack", "PreferDualStack", "RequireDualStack", "IPv4", "IPv6", "FQDN",
	"RollingUpdate", "Recreate", "OnDelete", "OrderedReady", "Parallel", "Retain", "Delete",
	"Indexed", "NonIndexed", "Allow", "Forbid", "Replace", "Failed", "TerminatingOrFailed",
	"FailJob", "FailIndex", "Ignore", "Count", "In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", "Equal",
	"NoSchedule", "PreferNoSchedule", "NoExecute", "DoNotSchedule", "ScheduleAnyway",
	"Prefix", "Exact", "ImplementationSpecific", "Namespace", "Ingress", "Egress",
	"Resource", "Pods", "Object", "External", "ContainerResource", "Utilization", "Value", "AverageValue",
	"Max", "Min", "Disabled", "Percent", "Opaque", "kubernetes.io/tls", "kubernetes.io/dockerconfigjson",
	"kubernetes.io/service-account-token", "kubernetes.io/basic-auth", "Bidirectional", "HostToContainer",
	"Localhost", "RuntimeDefault", "Unconfined", "v1", "metadata.name", "metadata.labels['a']", "status.podIP",
	"cpu", "memory", "hugepages-2Mi", "requests.cpu", "limits.memory", "AlwaysAllow", "IfHealthyBudget",
	"OldestEmulationVersion", "linux", "windows", "Linux", "Deployment", "apps/v1", "PreemptLowerPriority",
}

// newFiller returns a randfill filler driven by data whose strings are
// often taken from fuzzStrings and whose quantities and int-or-strings are
// well formed.
func newFiller(data []byte, r *rand.Rand) *randfill.Filler {
	return randfill.NewFromGoFuzz(data).NilChance(0.5).NumElements(0, 3).MaxDepth(14).Funcs(
		func(q *resource.Quantity, c randfill.Continue) {
			*q = *resource.NewMilliQuantity(c.Int63n(1<<40)-1<<20, resource.DecimalSI)
		},
		func(v *intstr.IntOrString, c randfill.Continue) {
			if c.Bool() {
				*v = intstr.FromInt32(int32(c.Intn(70000)) - 5)
			} else {
				*v = intstr.FromString(pickString(r))
			}
		},
		func(f *metav1.FieldsV1, c randfill.Continue) {
			f.Raw = []byte(`{"f:metadata":{}}`)
		},
		func(s *string, c randfill.Continue) {
			if c.Bool() {
				*s = pickString(r)
			} else {
				*s = c.String(8)
			}
		},
	)
}

func pickString(r *rand.Rand) string { return fuzzStrings[r.Intn(len(fuzzStrings))] }

// enumValues lists the values of the enum-like string types, so that a
// field of such a type mostly gets one of its own values.
var enumValues = map[reflect.Type][]string{}

func enum[T ~string](values ...T) {
	var zero T
	list := []string{"", "Bogus"}
	for _, v := range values {
		list = append(list, string(v))
	}
	enumValues[reflect.TypeOf(zero)] = list
}

func init() {
	enum(corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName)
	enum(corev1.ServiceAffinityNone, corev1.ServiceAffinityClientIP)
	enum(corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP)
	enum(corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever)
	enum(corev1.DNSClusterFirst, corev1.DNSNone, corev1.DNSDefault, corev1.DNSClusterFirstWithHostNet)
	enum(corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever)
	enum(corev1.IPv4Protocol, corev1.IPv6Protocol)
	enum(corev1.IPFamilyPolicySingleStack, corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack)
	enum(corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal)
	enum(corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal)
	enum(corev1.SecretTypeOpaque, corev1.SecretTypeTLS, corev1.SecretTypeDockerConfigJson, corev1.SecretTypeDockercfg,
		corev1.SecretTypeBasicAuth, corev1.SecretTypeSSHAuth, corev1.SecretTypeServiceAccountToken)
	enum(corev1.TolerationOpEqual, corev1.TolerationOpExists)
	enum(corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute, corev1.TaintEffectPreferNoSchedule)
	enum(corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn, corev1.NodeSelectorOpExists, corev1.NodeSelectorOpGt)
	enum(corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError)
	enum(corev1.URISchemeHTTP, corev1.URISchemeHTTPS)
	enum(corev1.MountPropagationBidirectional, corev1.MountPropagationNone)
	enum(corev1.ContainerRestartPolicyAlways)
	enum(corev1.ClaimPending)
	enum(corev1.ReadWriteOnce, corev1.ReadWriteOncePod, corev1.ReadOnlyMany)
	enum(corev1.PersistentVolumeFilesystem, corev1.PersistentVolumeBlock)
	enum(corev1.HostPathUnset, corev1.HostPathDirectory)
	enum(corev1.SeccompProfileTypeLocalhost, corev1.SeccompProfileTypeRuntimeDefault)
	enum(corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceName("hugepages-2Mi"), corev1.ResourceName("example.com/gpu"))
	enum(corev1.FinalizerKubernetes)
	enum(corev1.NamespaceActive, corev1.NamespaceTerminating)
	enum(corev1.ConditionTrue, corev1.ConditionFalse)
	enum(corev1.DoNotSchedule, corev1.ScheduleAnyway)
	enum(corev1.Linux, corev1.Windows)
	enum(appsv1.RollingUpdateDeploymentStrategyType, appsv1.RecreateDeploymentStrategyType)
	enum(appsv1.RollingUpdateStatefulSetStrategyType, appsv1.OnDeleteStatefulSetStrategyType)
	enum(appsv1.RollingUpdateDaemonSetStrategyType, appsv1.OnDeleteDaemonSetStrategyType)
	enum(appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement)
	enum(appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType)
	enum(batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent)
	enum(batchv1.NonIndexedCompletion, batchv1.IndexedCompletion)
	enum(batchv1.Failed, batchv1.TerminatingOrFailed)
	enum(batchv1.PodFailurePolicyActionFailJob, batchv1.PodFailurePolicyActionIgnore, batchv1.PodFailurePolicyActionCount, batchv1.PodFailurePolicyActionFailIndex)
	enum(batchv1.PodFailurePolicyOnExitCodesOpIn, batchv1.PodFailurePolicyOnExitCodesOpNotIn)
	enum(autoscalingv2.ResourceMetricSourceType, autoscalingv2.PodsMetricSourceType, autoscalingv2.ObjectMetricSourceType,
		autoscalingv2.ExternalMetricSourceType, autoscalingv2.ContainerResourceMetricSourceType)
	enum(autoscalingv1.ResourceMetricSourceType, autoscalingv1.PodsMetricSourceType, autoscalingv1.ObjectMetricSourceType,
		autoscalingv1.ExternalMetricSourceType, autoscalingv1.ContainerResourceMetricSourceType)
	enum(autoscalingv2.UtilizationMetricType, autoscalingv2.ValueMetricType, autoscalingv2.AverageValueMetricType)
	enum(autoscalingv2.MaxChangePolicySelect, autoscalingv2.MinChangePolicySelect, autoscalingv2.DisabledPolicySelect)
	enum(autoscalingv2.PodsScalingPolicy, autoscalingv2.PercentScalingPolicy)
	enum(networkingv1.PathTypePrefix, networkingv1.PathTypeExact, networkingv1.PathTypeImplementationSpecific)
	enum(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress)
	enum(discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN)
	enum(policyv1.IfHealthyBudget, policyv1.AlwaysAllow)
	enum(coordinationv1.OldestEmulationVersion)
}

// pickFor returns a value for a string of type t: usually one of its enum
// values, otherwise any fuzzString.
func pickFor(t reflect.Type, r *rand.Rand) string {
	if values := enumValues[t]; len(values) > 0 && r.Intn(4) != 0 {
		return values[r.Intn(len(values))]
	}
	return pickString(r)
}

var fuzzInts = []int64{0, 1, 2, -1, 3, 80, 100, 101, 600, 1800, 3601, 30000, 32768, 65535, 65536, 1 << 31, -1 << 40}

// leafTypes are structs perturb replaces whole rather than walks into.
var leafTypes = map[reflect.Type]bool{
	reflect.TypeOf(resource.Quantity{}):  true,
	reflect.TypeOf(intstr.IntOrString{}): true,
	reflect.TypeOf(metav1.Time{}):        true,
	reflect.TypeOf(metav1.MicroTime{}):   true,
	reflect.TypeOf(metav1.FieldsV1{}):    true,
}

// perturb makes a few random changes to v: strings swapped for
// fuzzStrings, numbers for edge values, booleans flipped, pointers cleared
// or filled, list elements dropped or repeated, map entries added.
func perturb(v reflect.Value, r *rand.Rand, f *randfill.Filler, depth int) {
	const p = 12 // one change in p
	if depth > 20 || !v.CanSet() {
		return
	}
	if leafTypes[v.Type()] {
		if r.Intn(p) == 0 {
			f.Fill(v.Addr().Interface())
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		switch {
		case v.IsNil() && r.Intn(p) == 0:
			n := reflect.New(v.Type().Elem())
			f.Fill(n.Interface())
			v.Set(n)
		case !v.IsNil() && r.Intn(2*p) == 0:
			v.Set(reflect.Zero(v.Type()))
		case !v.IsNil():
			perturb(v.Elem(), r, f, depth+1)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				perturb(v.Field(i), r, f, depth+1)
			}
		}
	case reflect.Slice:
		switch {
		case v.Len() > 0 && r.Intn(p) == 0:
			v.Set(reflect.Append(v, v.Index(r.Intn(v.Len()))))
		case v.Len() > 0 && r.Intn(p) == 0:
			v.Set(v.Slice(0, v.Len()-1))
		case r.Intn(2*p) == 0:
			e := reflect.New(v.Type().Elem())
			f.Fill(e.Interface())
			v.Set(reflect.Append(v, e.Elem()))
		}
		for i := 0; i < v.Len(); i++ {
			perturb(v.Index(i), r, f, depth+1)
		}
	case reflect.Map:
		if v.Type().Key().Kind() == reflect.String && v.Type().Elem().Kind() == reflect.String && r.Intn(p) == 0 {
			if v.IsNil() {
				v.Set(reflect.MakeMap(v.Type()))
			}
			v.SetMapIndex(reflect.ValueOf(pickString(r)).Convert(v.Type().Key()), reflect.ValueOf(pickString(r)).Convert(v.Type().Elem()))
		}
	case reflect.String:
		if r.Intn(p) == 0 {
			v.SetString(pickFor(v.Type(), r))
		}
	case reflect.Bool:
		if r.Intn(p) == 0 {
			v.SetBool(!v.Bool())
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if r.Intn(p) == 0 {
			v.SetInt(fuzzInts[r.Intn(len(fuzzInts))])
		}
	}
}

// pickStrings replaces about half of the strings of named string types
// (which the filler's string func does not reach) with fuzzStrings.
func pickStrings(v reflect.Value, r *rand.Rand) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			pickStrings(v.Elem(), r)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				pickStrings(v.Field(i), r)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			pickStrings(v.Index(i), r)
		}
	case reflect.String:
		if v.CanSet() && v.Type() != reflect.TypeOf("") && r.Intn(2) == 0 {
			v.SetString(pickFor(v.Type(), r))
		}
	}
}
