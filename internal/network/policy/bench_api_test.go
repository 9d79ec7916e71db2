package policy_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"

	"skiff.dev/skiff/internal/network/netns"
	"skiff.dev/skiff/internal/network/policy"
	"skiff.dev/skiff/internal/testenv"
)

// BenchmarkPodLabelChangeAPI: one pod-label change from the API write to
// the kernel, through a real API server, the watch, the informer cache and
// the Enforcer, over the 200 policies and 1,000 pods of benchWorld
// (bench_test.go). The time ends when the pod's address has moved in or
// out of the set of zone=prod pods.
func BenchmarkPodLabelChangeAPI(b *testing.B) {
	policy.RequireLab(b)
	loUp(b)
	nsPath := policy.KernelNS(b)
	env := testenv.Start(b, testenv.WithoutControllers)
	ctx := b.Context()
	in := policy.BenchWorld()
	for _, ns := range in.Namespaces {
		if _, err := env.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 16)
		errs = make(chan error, len(in.Pods)+len(in.Policies))
	)
	do := func(f func() error) {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := f(); err != nil {
				errs <- err
			}
		})
	}
	for _, pod := range in.Pods {
		do(func() error {
			created, err := env.Client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			created.Status = pod.Status
			_, err = env.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{})
			return err
		})
	}
	for _, np := range in.Policies {
		do(func() error {
			_, err := env.Client.NetworkingV1().NetworkPolicies(np.Namespace).Create(ctx, np, metav1.CreateOptions{})
			return err
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	e := policy.New(env.Client, factory, slog.New(slog.DiscardHandler), policy.Options{NodeName: "node-1", NodeDNS: in.NodeDNS, NetNS: nsPath})
	testenv.Run(b, "enforcer", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		return e.Run(ctx)
	})
	<-e.Ready()

	pod := in.Pods[0]
	ip := netip.MustParseAddr(pod.Status.PodIP)
	set := "pods-" + policy.ShortHash("ns/"+pod.Namespace+" pods[zone=prod]")
	f, err := netns.Open(nsPath)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	conn, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		b.Fatal(err)
	}
	table := &nftables.Table{Name: policy.DefaultTable, Family: nftables.TableFamilyIPv4}
	inSet := func() bool {
		s, err := conn.GetSetByName(table, set)
		if err != nil {
			b.Fatal(err)
		}
		elems, err := conn.GetSetElements(s)
		if err != nil {
			b.Fatal(err)
		}
		return slices.ContainsFunc(elems, func(el nftables.SetElement) bool { return bytes.Equal(el.Key, policy.AddrBytes(ip)) })
	}
	zone := pod.Labels["zone"]
	for b.Loop() {
		if zone == "prod" {
			zone = "staging"
		} else {
			zone = "prod"
		}
		patch := fmt.Sprintf(`{"metadata":{"labels":{"zone":%q}}}`, zone)
		if _, err := env.Client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			b.Fatal(err)
		}
		for inSet() != (zone == "prod") {
			time.Sleep(200 * time.Microsecond)
		}
	}
}
