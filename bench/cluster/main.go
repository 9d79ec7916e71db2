// Command cluster measures the issue-8 figure "skiff server start → a Ready
// node with DNS answering": it starts an all-in-one `skiff server` (with its
// node) on a fresh data dir, then polls every 10 ms until /readyz answers,
// the node is Ready and the cluster DNS answers
// kubernetes.default.svc.cluster.local. It must run as root inside a network
// namespace of its own (bench/cluster/run.sh does that) and prints one JSON
// line.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	bin := flag.String("skiff", "bin/skiff", "skiff binary")
	shim := flag.String("shim", "bin/skiff-shim", "skiff-shim binary")
	runs := flag.Int("runs", 5, "starts")
	dnsAddr := flag.String("dns", "10.96.0.10:53", "cluster DNS address")
	flag.Parse()
	var api, node, dnsUp []time.Duration
	for range *runs {
		a, n, d, err := once(*bin, *shim, *dnsAddr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "run:", err)
			os.Exit(1)
		}
		api, node, dnsUp = append(api, a), append(node, n), append(dnsUp, d)
	}
	out, _ := json.Marshal(map[string]any{
		"runs": *runs, "readyz_ms": summary(api), "node_ready_ms": summary(node), "node_ready_and_dns_ms": summary(dnsUp),
	})
	fmt.Println(string(out))
}

func once(bin, shim, dnsAddr string) (api, node, both time.Duration, err error) {
	dir, err := os.MkdirTemp("", "skiff-bench-cluster-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	log, _ := os.Create(filepath.Join(dir, "server.log"))
	cmd := exec.Command(bin, "server", "--data-dir", filepath.Join(dir, "data"), "--listen", "127.0.0.1:6443",
		"--registry-listen=", "--run-dir", filepath.Join(dir, "run"), "--shim", shim, "--node-name", "bench", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		exec.Command("sh", "-c", "awk -v d="+dir+"/ 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r umount -l").Run()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kubeconfig := filepath.Join(dir, "data", "admin.kubeconfig")
	var client *kubernetes.Clientset
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	q := new(dns.Msg)
	q.SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA)
	dc := &dns.Client{Timeout: 100 * time.Millisecond}
	for ; ; <-tick.C {
		if ctx.Err() != nil {
			tail, _ := os.ReadFile(log.Name())
			if len(tail) > 4000 {
				tail = tail[len(tail)-4000:]
			}
			return 0, 0, 0, fmt.Errorf("not ready after a minute (readyz %v, node %v); server log ends:\n%s", api, node, tail)
		}
		if client == nil {
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				continue
			}
			cfg.Timeout = time.Second
			client = kubernetes.NewForConfigOrDie(cfg)
		}
		if api == 0 {
			if body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil || string(body) != "ok" {
				continue
			}
			api = time.Since(t0)
		}
		if node == 0 {
			n, err := client.CoreV1().Nodes().Get(ctx, "bench", metav1.GetOptions{})
			if err != nil || !ready(n) {
				continue
			}
			node = time.Since(t0)
		}
		if r, _, err := dc.Exchange(q, dnsAddr); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			return api, node, time.Since(t0), nil
		}
	}
}

func ready(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func summary(ds []time.Duration) map[string]float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return map[string]float64{"min": ms(s[0]), "median": ms(s[len(s)/2]), "max": ms(s[len(s)-1])}
}
