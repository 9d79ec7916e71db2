// Package apiserver_bench holds Go benchmarks of the API server's hot
// paths against a real in-process server. Run with
// `go test -bench . ./bench/apiserver/`.
package apiserver_bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/testenv"
)

// BenchmarkList5000 lists 5,000 ConfigMaps of 128 bytes, as apiload does.
func BenchmarkList5000(b *testing.B) {
	env := testenv.Start(b, testenv.WithoutControllers)
	ctx := context.Background()
	cms := env.Client.CoreV1().ConfigMaps("default")
	payload := strings.Repeat("x", 128)
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%06d", i)}, Data: map[string]string{"k": payload}}, metav1.CreateOptions{})
			}
		}()
	}
	for i := 0; i < 5000; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l, err := cms.List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) != 5000 {
			b.Fatalf("list: %v, %d items", err, len(l.Items))
		}
	}
}
