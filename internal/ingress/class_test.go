package ingress

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestClassSelection(t *testing.T) {
	class := func(name, controller string, isDefault bool) *networkingv1.IngressClass {
		ic := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.IngressClassSpec{Controller: controller}}
		if isDefault {
			ic.Annotations = map[string]string{AnnotationDefaultClass: "true"}
		}
		return ic
	}
	byName := func(n string) *networkingv1.Ingress {
		return &networkingv1.Ingress{Spec: networkingv1.IngressSpec{IngressClassName: ptr.To(n)}}
	}
	legacy := func(n string) *networkingv1.Ingress {
		return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{annotationLegacyClass: n}}}
	}
	classless := &networkingv1.Ingress{}
	cases := []struct {
		name    string
		classes []*networkingv1.IngressClass
		ing     *networkingv1.Ingress
		want    bool
	}{
		{"our class by name", []*networkingv1.IngressClass{class("skiff", DefaultControllerName, true)}, byName("skiff"), true},
		{"our name without the object", nil, byName("skiff"), true},
		{"another class", []*networkingv1.IngressClass{class("nginx", "k8s.io/ingress-nginx", false)}, byName("nginx"), false},
		{"a second class of ours", []*networkingv1.IngressClass{class("edge", DefaultControllerName, false)}, byName("edge"), true},
		{"our name taken by another controller", []*networkingv1.IngressClass{class("skiff", "example.com/other", false)}, byName("skiff"), false},
		{"classless when we are default", []*networkingv1.IngressClass{class("skiff", DefaultControllerName, true)}, classless, true},
		{"classless when we are not default", []*networkingv1.IngressClass{class("skiff", DefaultControllerName, false),
			class("nginx", "k8s.io/ingress-nginx", true)}, classless, false},
		{"classless without classes", nil, classless, false},
		{"legacy annotation", nil, legacy("skiff"), true},
		{"legacy annotation of another", []*networkingv1.IngressClass{class("skiff", DefaultControllerName, true)}, legacy("nginx"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := classesFor(tc.classes, DefaultClassName, DefaultControllerName).serves(tc.ing); got != tc.want {
				t.Errorf("serves = %v, want %v", got, tc.want)
			}
		})
	}
}
