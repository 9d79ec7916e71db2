package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"skiff.dev/skiff/internal/testenv"
)

func clientFor(t *testing.T, p *testenv.Proc) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", p.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 1000, 1000
	cfg.Timeout = 5 * time.Second
	return kubernetes.NewForConfigOrDie(cfg)
}

// TestKill9KeepsAcknowledgedWrites kills the server with SIGKILL in the
// middle of a stream of creates; after a restart every create the server
// acknowledged is there.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	dir, addr := t.TempDir(), testenv.FreePort(t)
	p := testenv.StartProcess(t, dir, addr)
	cs := clientFor(t, p)

	var mu sync.Mutex
	var acked []string
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				name := fmt.Sprintf("cm-%d-%d", w, i)
				_, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"i": name}}, metav1.CreateOptions{})
				if err != nil {
					return // the server is gone
				}
				mu.Lock()
				acked = append(acked, name)
				mu.Unlock()
			}
		}(w)
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.Kill()
	cancel()
	wg.Wait()

	p2 := testenv.StartProcess(t, dir, addr)
	cs2 := clientFor(t, p2)
	list, err := cs2.CoreV1().ConfigMaps("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, cm := range list.Items {
		have[cm.Name] = true
	}
	for _, name := range acked {
		if !have[name] {
			t.Errorf("acknowledged create %s lost after kill -9", name)
		}
	}
	t.Logf("%d acknowledged creates, %d objects after restart", len(acked), len(list.Items))
	if err := p2.Stop(); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
}
