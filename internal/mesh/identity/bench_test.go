package identity_test

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BenchmarkIssue is one pod's first identity: key generation, the CSR,
// the signer's approval and signature, and the watch that sees it.
func BenchmarkIssue(b *testing.B) {
	admin, meshCA, m := start(b, time.Hour)
	setup(b, admin, meshCA.RootsPEM())
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		pod, err := admin.CoreV1().Pods("shop").Create(b.Context(), &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%d", i)},
			Spec: corev1.PodSpec{NodeName: "node-a", ServiceAccountName: "cart",
				Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := m.Identity(b.Context(), pod); err != nil {
			b.Fatal(err)
		}
	}
}
