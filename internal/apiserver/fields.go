package apiserver

import (
	"strconv"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
)

// Field selectors: every kind supports metadata.name and
// metadata.namespace; these kinds add the fields upstream adds.
var kindFields = map[schema.GroupKind]func(runtime.Object, fields.Set){
	{Kind: "Pod"}: func(obj runtime.Object, f fields.Set) {
		p := obj.(*corev1.Pod)
		f["spec.nodeName"] = p.Spec.NodeName
		f["spec.restartPolicy"] = string(p.Spec.RestartPolicy)
		f["spec.schedulerName"] = p.Spec.SchedulerName
		f["spec.serviceAccountName"] = p.Spec.ServiceAccountName
		f["spec.hostNetwork"] = strconv.FormatBool(p.Spec.HostNetwork)
		f["status.phase"] = string(p.Status.Phase)
		f["status.podIP"] = p.Status.PodIP
		f["status.nominatedNodeName"] = p.Status.NominatedNodeName
	},
	{Kind: "Event"}: func(obj runtime.Object, f fields.Set) {
		e := obj.(*corev1.Event)
		f["involvedObject.kind"] = e.InvolvedObject.Kind
		f["involvedObject.namespace"] = e.InvolvedObject.Namespace
		f["involvedObject.name"] = e.InvolvedObject.Name
		f["involvedObject.uid"] = string(e.InvolvedObject.UID)
		f["involvedObject.apiVersion"] = e.InvolvedObject.APIVersion
		f["involvedObject.resourceVersion"] = e.InvolvedObject.ResourceVersion
		f["involvedObject.fieldPath"] = e.InvolvedObject.FieldPath
		f["reason"] = e.Reason
		f["reportingComponent"] = e.ReportingController
		f["source"] = e.Source.Component
		f["type"] = e.Type
	},
	{Kind: "Secret"}: func(obj runtime.Object, f fields.Set) {
		f["type"] = string(obj.(*corev1.Secret).Type)
	},
	{Kind: "Node"}: func(obj runtime.Object, f fields.Set) {
		f["spec.unschedulable"] = strconv.FormatBool(obj.(*corev1.Node).Spec.Unschedulable)
	},
	{Kind: "Namespace"}: func(obj runtime.Object, f fields.Set) {
		f["status.phase"] = string(obj.(*corev1.Namespace).Status.Phase)
	},
	csrGK: func(obj runtime.Object, f fields.Set) {
		f["spec.signerName"] = obj.(*certificatesv1.CertificateSigningRequest).Spec.SignerName
	},
}

// fieldsFor returns the function giving an object's selectable fields.
func fieldsFor(gk schema.GroupKind) func(runtime.Object) fields.Set {
	extra := kindFields[gk]
	return func(obj runtime.Object) fields.Set {
		m := accessor(obj)
		f := fields.Set{"metadata.name": m.GetName()}
		if ns := m.GetNamespace(); ns != "" {
			f["metadata.namespace"] = ns
		} else {
			f["metadata.namespace"] = ""
		}
		if extra != nil {
			extra(obj, f)
		}
		return f
	}
}

// supportedField reports whether kind gk can be selected by field name.
func supportedField(gk schema.GroupKind, name string) bool {
	if name == "metadata.name" || name == "metadata.namespace" {
		return true
	}
	fn := kindFields[gk]
	if fn == nil {
		return false
	}
	obj, err := scheme.Scheme.New(corev1.SchemeGroupVersion.WithKind(gk.Kind))
	if err != nil {
		return false
	}
	f := fields.Set{}
	fn(obj, f)
	_, ok := f[name]
	return ok
}
