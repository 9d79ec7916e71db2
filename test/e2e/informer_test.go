package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"skiff.dev/skiff/internal/testenv"
)

// cutProxy forwards TCP to a target and can sever every open connection,
// as a network blip or a load balancer restart would.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestInformerOrderAndRecovery: a client-go informer sees adds, updates
// and deletes in order, and after its connection is cut it resumes and
// sees what happened meanwhile.
func TestInformerOrderAndRecovery(t *testing.T) {
	env := testenv.Start(t)
	proxy := newCutProxy(t, env.Config.Host[len("https://"):])
	cfg := *env.Config
	cfg.Host = "https://" + proxy.ln.Addr().String()
	cfg.TLSClientConfig.ServerName = "localhost"
	cs := kubernetes.NewForConfigOrDie(&cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	var seen []string
	// Only the test's own ConfigMaps count: the server publishes others
	// in every namespace (kube-root-ca.crt, istio-ca-root-cert), at times
	// of its choosing.
	record := func(s string) {
		if f := strings.Fields(s); len(f) < 2 || len(f[1]) != 1 {
			return
		}
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace("default"))
	inf := factory.Core().V1().ConfigMaps().Informer()
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) { record("add " + o.(*corev1.ConfigMap).Name) },
		UpdateFunc: func(old, o any) {
			record(fmt.Sprintf("update %s %s", o.(*corev1.ConfigMap).Name, o.(*corev1.ConfigMap).Data["v"]))
		},
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			record("delete " + o.(*corev1.ConfigMap).Name)
		},
	})
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("cache did not sync")
	}
	api := env.Client.CoreV1().ConfigMaps("default")
	step := func(name, v string) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"v": v}}
		if _, err := api.Get(ctx, name, metav1.GetOptions{}); err != nil {
			if _, err := api.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			return
		}
		if _, err := api.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(want []string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			got := fmt.Sprint(seen)
			mu.Unlock()
			if got == fmt.Sprint(want) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("informer saw\n  %v\nwant\n  %v", seen, want)
	}
	// kube-root-ca.crt may or may not exist; start from a clean slate.
	mu.Lock()
	seen = nil
	mu.Unlock()

	step("a", "1")
	step("a", "2")
	step("b", "1")
	api.Delete(ctx, "a", metav1.DeleteOptions{})
	want := []string{"add a", "update a 2", "add b", "delete a"}
	waitFor(want)

	proxy.cut()
	// While the informer reconnects, the world moves on.
	step("b", "2")
	step("c", "1")
	api.Delete(ctx, "b", metav1.DeleteOptions{})
	want = append(want, "update b 2", "add c", "delete b")
	waitFor(want)
}
