package openapi

import (
	"bytes"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"unicode"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/util"
	"k8s.io/kube-openapi/pkg/validation/spec"

	settingsv1alpha1 "skiff.dev/skiff/internal/apis/settings/v1alpha1"
)

// addToScheme registers the API groups whose types zz_generated.openapi.go
// describes (keep in sync with hack/update-openapi.sh). The scheme is only
// used to learn which group/version/kinds each schema stands for.
var addToScheme = runtime.SchemeBuilder{
	corev1.AddToScheme,
	appsv1.AddToScheme,
	batchv1.AddToScheme,
	autoscalingv1.AddToScheme,
	autoscalingv2.AddToScheme,
	networkingv1.AddToScheme,
	discoveryv1.AddToScheme,
	coordinationv1.AddToScheme,
	certificatesv1.AddToScheme,
	policyv1.AddToScheme,
	rbacv1.AddToScheme,
	storagev1.AddToScheme,
	schedulingv1.AddToScheme,
	settingsv1alpha1.AddToScheme, // Skiff's own: schemas in definitions
}

const (
	extGVK    = "x-kubernetes-group-version-kind"
	extAction = "x-kubernetes-action"
)

// names maps between definition (model) names such as
// "io.k8s.api.apps.v1.Deployment" and the kinds registered for them. It is
// the counterpart of the upstream API server's DefinitionNamer: definitions
// of kinds carry the x-kubernetes-group-version-kind extension, which is how
// kubectl finds the schema of a kind.
type names struct {
	// gvks holds, per model name, the extension value listing its kinds.
	gvks map[string][]any
	// models holds the model name of each registered kind.
	models map[schema.GroupVersionKind]string
}

func newNames() (*names, error) {
	s := runtime.NewScheme()
	if err := addToScheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("register api types: %w", err)
	}
	n := &names{models: map[schema.GroupVersionKind]string{}}
	byModel := map[string][]schema.GroupVersionKind{}
	for gvk, t := range s.AllKnownTypes() {
		if gvk.Version == runtime.APIVersionInternal {
			continue
		}
		m := modelName(t)
		n.models[gvk] = m
		byModel[m] = append(byModel[m], gvk)
	}
	n.gvks = make(map[string][]any, len(byModel))
	for m, gvks := range byModel {
		sort.Slice(gvks, func(i, j int) bool {
			a, b := gvks[i], gvks[j]
			if a.Group != b.Group {
				return a.Group < b.Group
			}
			if a.Version != b.Version {
				return a.Version < b.Version
			}
			return a.Kind < b.Kind
		})
		ext := make([]any, len(gvks))
		for i, gvk := range gvks {
			ext[i] = map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind}
		}
		n.gvks[m] = ext
	}
	return n, nil
}

// modelName is the OpenAPI name of a Go type: what its OpenAPIModelName
// method says (all k8s.io/api types have one), else the REST-friendly form of
// its package path and name.
func modelName(t reflect.Type) string {
	if namer, ok := reflect.New(t).Interface().(util.OpenAPIModelNamer); ok {
		return namer.OpenAPIModelName()
	}
	return util.ToRESTFriendlyName(t.PkgPath() + "." + t.Name())
}

// definitionName implements common.Config.GetDefinitionName: the generated
// definitions are keyed by model name already; kinds get their GVKs.
func (n *names) definitionName(name string) (string, spec.Extensions) {
	if strings.Contains(name, "/") { // a Go canonical name, k8s.io/api/core/v1.Pod
		name = util.ToRESTFriendlyName(name)
	}
	if gvks, ok := n.gvks[name]; ok {
		return name, spec.Extensions{extGVK: gvks}
	}
	return name, nil
}

// model returns the sample the kube-openapi builders take for a request or
// response body of the given kind.
func (n *names) model(gvk schema.GroupVersionKind) (model, error) {
	m, ok := n.models[gvk]
	if !ok {
		return "", fmt.Errorf("no OpenAPI schema for kind %v", gvk)
	}
	return model(m), nil
}

// model stands for a Go type in the builders' eyes: they name the schema of a
// body after util.GetCanonicalTypeName of a sample value, which honours
// OpenAPIModelName.
type model string

func (m model) OpenAPIModelName() string { return string(m) }

var verbPrefixes = util.NewTrie([]string{"get", "log", "read", "replace", "patch", "delete", "deletecollection", "watch", "connect", "proxy", "list", "create"})

// operationIDAndTags names operations as the upstream API server does:
// readNamespacedDeployment under /apis/apps/v1 becomes
// readAppsV1NamespacedDeployment, tagged apps_v1.
func operationIDAndTags(r common.Route) (string, []string, error) {
	op := r.OperationName()
	prefix, ok := verbPrefixes.GetPrefix(op)
	if !ok {
		return op, nil, fmt.Errorf("operation %q does not start with a verb", op)
	}
	op = op[len(prefix):]
	parts := strings.Split(strings.Trim(r.Path(), "/"), "/")
	if len(parts) >= 1 && parts[0] == "api" {
		parts = append([]string{"apis", "core"}, parts[1:]...)
	}
	var tags []string
	if len(parts) >= 2 && parts[0] == "apis" {
		group := strings.TrimSuffix(parts[1], ".k8s.io")
		prefix += validOperationID(group, prefix != "")
		tag := validOperationID(group, false)
		if len(parts) > 2 {
			prefix += validOperationID(parts[2], prefix != "")
			tag += "_" + validOperationID(parts[2], false)
		}
		tags = append(tags, tag)
	} else if len(parts) >= 1 {
		tags = append(tags, validOperationID(parts[0], false))
	}
	return prefix + validOperationID(op, prefix != ""), tags, nil
}

// validOperationID camel-cases s, dropping punctuation: "rbac.authorization"
// becomes "RbacAuthorization" (or "rbacAuthorization").
func validOperationID(s string, capitalizeFirst bool) string {
	var b bytes.Buffer
	capitalize := capitalizeFirst
	for i, r := range s {
		switch {
		case unicode.IsLetter(r) || r == '_' || (i != 0 && unicode.IsDigit(r)):
			if capitalize {
				r = unicode.ToUpper(r)
				capitalize = false
			}
			b.WriteRune(r)
		default:
			capitalize = true
		}
	}
	return b.String()
}
