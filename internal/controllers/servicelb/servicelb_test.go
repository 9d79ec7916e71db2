package servicelb_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/controllers/servicelb"
	"skiff.dev/skiff/internal/testenv"
)

// run starts the controller against env; stop ends it (and runs at
// cleanup).
func run(t *testing.T, c kubernetes.Interface, opts servicelb.Options) (stop func()) {
	t.Helper()
	factory := informers.NewSharedInformerFactory(c, 0)
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.CoreV1().Events("")})
	t.Cleanup(b.Shutdown)
	ctrl := servicelb.New(c, factory, b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "servicelb-controller"}), testenv.Logger(t), opts)
	return testenv.Run(t, "servicelb controller", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		return ctrl.Run(ctx, 2)
	})
}

func lbService(name string, port int32, mutate ...func(*corev1.Service)) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: port, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	for _, m := range mutate {
		m(svc)
	}
	return svc
}

func create(t *testing.T, c kubernetes.Interface, svc *corev1.Service) *corev1.Service {
	t.Helper()
	out, err := c.CoreV1().Services(svc.Namespace).Create(t.Context(), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func ingressIPs(svc *corev1.Service) []string {
	var out []string
	for _, i := range svc.Status.LoadBalancer.Ingress {
		s := i.IP
		if i.IPMode == nil || *i.IPMode != corev1.LoadBalancerIPModeVIP {
			s += "(no VIP mode)"
		}
		out = append(out, s)
	}
	return out
}

// waitIngress waits until the Service's status shows exactly ips.
func waitIngress(t *testing.T, c kubernetes.Interface, name string, ips ...string) *corev1.Service {
	t.Helper()
	var svc *corev1.Service
	testenv.Eventually(t, fmt.Sprintf("%s has ingress %v", name, ips), func(ctx context.Context) (bool, error) {
		s, err := c.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		svc = s
		return slices.Equal(ingressIPs(s), ips), fmt.Errorf("ingress %v", ingressIPs(s))
	})
	return svc
}

// waitEvent waits for an event of reason about the Service whose message
// contains text.
func waitEvent(t *testing.T, c kubernetes.Interface, name, reason, text string) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("event %s %q for %s", reason, text, name), func(ctx context.Context) (bool, error) {
		evs, err := c.CoreV1().Events("default").List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String(),
		})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Reason == reason && strings.Contains(e.Message, text) {
				return true, nil
			}
		}
		return false, nil
	})
}

func TestPoolAllocation(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client
	ctx := t.Context()
	stop := run(t, c, servicelb.Options{Pool: []string{"203.0.113.100-203.0.113.101"}})

	create(t, c, lbService("a", 80))
	waitIngress(t, c, "a", "203.0.113.100")
	waitEvent(t, c, "a", servicelb.ReasonAllocated, "203.0.113.100")
	create(t, c, lbService("b", 81))
	waitIngress(t, c, "b", "203.0.113.101")

	// Exhausted.
	create(t, c, lbService("c", 82))
	waitEvent(t, c, "c", servicelb.ReasonFailed, "no available IPs")
	// A foreign class is not ours; a ClusterIP Service neither.
	create(t, c, lbService("foreign", 83, func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To("example.com/other") }))
	// Released when the Service goes: c gets it.
	if err := c.CoreV1().Services("default").Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, c, "c", "203.0.113.100")

	// Released when the type changes, with the status cleared.
	b, err := c.CoreV1().Services("default").Get(ctx, "b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b.Spec.Type = corev1.ServiceTypeClusterIP
	for i := range b.Spec.Ports {
		b.Spec.Ports[i].NodePort = 0
	}
	b.Spec.AllocateLoadBalancerNodePorts = nil
	b.Spec.ExternalTrafficPolicy = ""
	if _, err := c.CoreV1().Services("default").Update(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, c, "b")

	// A requested address: in use, then free; outside the pool.
	create(t, c, lbService("wants-100", 84, func(s *corev1.Service) {
		s.Annotations = map[string]string{servicelb.AnnotationLoadBalancerIPs: "203.0.113.100"}
	}))
	waitEvent(t, c, "wants-100", servicelb.ReasonFailed, "in use by default/c")
	create(t, c, lbService("wants-101", 85, func(s *corev1.Service) { s.Spec.LoadBalancerIP = "203.0.113.101" }))
	waitIngress(t, c, "wants-101", "203.0.113.101")
	create(t, c, lbService("wants-outside", 86, func(s *corev1.Service) { s.Spec.LoadBalancerIP = "192.0.2.1" }))
	waitEvent(t, c, "wants-outside", servicelb.ReasonFailed, "not in the address pool")
	if err := c.CoreV1().Services("default").Delete(ctx, "c", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, c, "wants-100", "203.0.113.100")

	// Stable across a restart: every Service keeps its address, and a new
	// controller allocates around them.
	stop()
	before := map[string]string{}
	list, err := c.CoreV1().Services("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Items {
		before[s.Name] = s.ResourceVersion
	}
	if err := c.CoreV1().Services("default").Delete(ctx, "wants-101", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	create(t, c, lbService("after-restart", 87))
	run(t, c, servicelb.Options{Pool: []string{"203.0.113.100-203.0.113.101"}})
	waitIngress(t, c, "after-restart", "203.0.113.101")
	if s := waitIngress(t, c, "wants-100", "203.0.113.100"); s.ResourceVersion != before["wants-100"] {
		t.Errorf("wants-100 was rewritten by the restarted controller")
	}
	if f, _ := c.CoreV1().Services("default").Get(ctx, "foreign", metav1.GetOptions{}); len(f.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("a foreign-class Service got %v", f.Status.LoadBalancer.Ingress)
	}
}

func node(name, ip string, ready bool) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: name}},
		},
	}
}

func setNode(t *testing.T, c kubernetes.Interface, n *corev1.Node) {
	t.Helper()
	ctx := t.Context()
	cur, err := c.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	if err != nil {
		if cur, err = c.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cur.Status = n.Status
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestNodeAddresses(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client
	ctx := t.Context()
	setNode(t, c, node("node-b", "192.0.2.12", true))
	setNode(t, c, node("node-a", "192.0.2.11", true))
	setNode(t, c, node("node-c", "192.0.2.13", false))
	run(t, c, servicelb.Options{})

	create(t, c, lbService("web", 80))
	waitIngress(t, c, "web", "192.0.2.11", "192.0.2.12")
	waitEvent(t, c, "web", servicelb.ReasonAllocated, "192.0.2.11,192.0.2.12")

	// Readiness changes follow.
	setNode(t, c, node("node-c", "192.0.2.13", true))
	waitIngress(t, c, "web", "192.0.2.11", "192.0.2.12", "192.0.2.13")
	setNode(t, c, node("node-a", "192.0.2.11", false))
	waitIngress(t, c, "web", "192.0.2.12", "192.0.2.13")

	// The same port on the nodes' addresses: the older Service keeps it.
	create(t, c, lbService("web2", 80))
	waitEvent(t, c, "web2", servicelb.ReasonFailed, "port 80/TCP is already used on the nodes' addresses by default/web")
	if err := c.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, c, "web2", "192.0.2.12", "192.0.2.13")
}
