package ingress

import (
	"context"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Skiff's IngressClass.
const (
	DefaultClassName      = "skiff"
	DefaultControllerName = "skiff.dev/ingress"
	// AnnotationDefaultClass marks the cluster's default IngressClass.
	AnnotationDefaultClass = "ingressclass.kubernetes.io/is-default-class"
	// annotationLegacyClass is the pre-IngressClass way to pick a
	// controller, still found in the wild.
	annotationLegacyClass = "kubernetes.io/ingress.class"
)

// EnsureIngressClass creates the IngressClass "skiff" (controller
// skiff.dev/ingress), marked as the default class unless another class
// already is. An existing "skiff" class is left as the user made it.
func EnsureIngressClass(ctx context.Context, client kubernetes.Interface) error {
	classes := client.NetworkingV1().IngressClasses()
	if _, err := classes.Get(ctx, DefaultClassName, metav1.GetOptions{}); err == nil {
		return nil
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("ingress class %q: %w", DefaultClassName, err)
	}
	list, err := classes.List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing ingress classes: %w", err)
	}
	isDefault := "true"
	for _, c := range list.Items {
		if c.Annotations[AnnotationDefaultClass] == "true" {
			isDefault = ""
		}
	}
	ic := &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: DefaultClassName},
		Spec:       networkingv1.IngressClassSpec{Controller: DefaultControllerName},
	}
	if isDefault != "" {
		ic.Annotations = map[string]string{AnnotationDefaultClass: isDefault}
	}
	if _, err := classes.Create(ctx, ic, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating ingress class %q: %w", DefaultClassName, err)
	}
	return nil
}

// classSet says which Ingresses a controller serves.
type classSet struct {
	ours map[string]bool
	// serveClassless: one of our classes is the default, so Ingresses
	// without a class are ours.
	serveClassless bool
}

// classesFor works out the class set from the cluster's IngressClasses:
// the classes whose controller is ours, and className itself unless a
// class of that name belongs to another controller.
func classesFor(list []*networkingv1.IngressClass, className, controller string) classSet {
	s := classSet{ours: map[string]bool{className: true}}
	for _, ic := range list {
		mine := ic.Spec.Controller == controller
		if ic.Name == className && !mine {
			delete(s.ours, className)
		}
		if mine {
			s.ours[ic.Name] = true
			if ic.Annotations[AnnotationDefaultClass] == "true" {
				s.serveClassless = true
			}
		}
	}
	return s
}

// serves reports whether ing is this controller's.
func (s classSet) serves(ing *networkingv1.Ingress) bool {
	if ing.Spec.IngressClassName != nil {
		return s.ours[*ing.Spec.IngressClassName]
	}
	if v, ok := ing.Annotations[annotationLegacyClass]; ok {
		return s.ours[v]
	}
	return s.serveClassless
}
