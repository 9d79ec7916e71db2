// Command dnsbench measures cluster DNS: queries per second from one
// client and latency percentiles, for Skiff's server (internal/network/dns)
// and, side by side, any other server answering the same names (CoreDNS
// with a zone file; see run.sh).
//
//	dnsbench serve -services 1000 -listen 127.0.0.1:5300   Skiff's server, fed with N Services
//	dnsbench zone -services 1000 -dir D                     the same names as a zone file + Corefile for CoreDNS
//	dnsbench load -server 127.0.0.1:5300 -services 1000     the load: one JSON line of results
//
// The load is closed-loop: -workers goroutines, each with its own UDP
// socket, send an A query for a random Service name and wait for its
// answer (timeouts count as errors).
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	skiffdns "skiff.dev/skiff/internal/network/dns"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dnsbench serve|zone|load [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "zone":
		err = zone(os.Args[2:])
	case "load":
		err = load(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dnsbench:", err)
		os.Exit(1)
	}
}

// name and address of Service i: svc-<i>.ns-<i%10>.svc.cluster.local,
// 10.96.<i/250>.<i%250+1>.
func svcName(i int) (name, ns string) { return fmt.Sprintf("svc-%d", i), fmt.Sprintf("ns-%d", i%10) }
func svcIP(i int) string              { return fmt.Sprintf("10.96.%d.%d", 1+i/250, 1+i%250) }
func fqdn(i int) string {
	n, ns := svcName(i)
	return n + "." + ns + ".svc.cluster.local."
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	n := fs.Int("services", 1000, "number of Services")
	listen := fs.String("listen", "127.0.0.1:5300", "address to answer on")
	_ = fs.Parse(args)
	objs := make([]runtime.Object, 0, *n)
	for i := range *n {
		name, ns := svcName(i)
		objs = append(objs, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.ServiceSpec{ClusterIP: svcIP(i), ClusterIPs: []string{svcIP(i)},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
		})
	}
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := skiffdns.New(client, factory, log, skiffdns.Options{Listen: *listen, Upstreams: []string{"127.0.0.1:1"}})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	factory.Start(ctx.Done())
	go func() {
		<-srv.Ready()
		fmt.Fprintln(os.Stderr, "serving on", srv.Addr())
	}()
	return srv.Run(ctx)
}

func zone(args []string) error {
	fs := flag.NewFlagSet("zone", flag.ExitOnError)
	n := fs.Int("services", 1000, "number of Services")
	dir := fs.String("dir", ".", "where to write cluster.local.zone and Corefile")
	listen := fs.String("listen", "127.0.0.1:5301", "address CoreDNS answers on")
	_ = fs.Parse(args)
	var b strings.Builder
	b.WriteString("$ORIGIN cluster.local.\n$TTL 5\n@ IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5\n@ IN NS ns.dns.cluster.local.\n")
	for i := range *n {
		fmt.Fprintf(&b, "%s IN A %s\n", fqdn(i), svcIP(i))
	}
	if err := os.WriteFile(filepath.Join(*dir, "cluster.local.zone"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(*listen)
	if err != nil {
		return err
	}
	corefile := fmt.Sprintf("cluster.local:%s {\n    bind %s\n    file %s\n}\n", port, host, filepath.Join(*dir, "cluster.local.zone"))
	return os.WriteFile(filepath.Join(*dir, "Corefile"), []byte(corefile), 0o644)
}

type result struct {
	Server   string  `json:"server"`
	Label    string  `json:"label,omitempty"`
	Workers  int     `json:"workers"`
	Seconds  float64 `json:"seconds"`
	Queries  int64   `json:"queries"`
	Errors   int64   `json:"errors"`
	QPS      float64 `json:"qps"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	P999us   float64 `json:"p999_us"`
	MaxUs    float64 `json:"max_us"`
	Services int     `json:"services"`
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	server := fs.String("server", "127.0.0.1:5300", "server to query")
	n := fs.Int("services", 1000, "number of Service names to draw from")
	workers := fs.Int("workers", 16, "queries in flight")
	dur := fs.Duration("duration", 10*time.Second, "how long to measure")
	warmup := fs.Duration("warmup", time.Second, "load before measuring")
	label := fs.String("label", "", "label for the result line")
	_ = fs.Parse(args)

	// Pre-packed queries; each send only patches the ID.
	queries := make([][]byte, *n)
	for i := range *n {
		m := new(dns.Msg)
		m.SetQuestion(fqdn(i), dns.TypeA)
		wire, err := m.Pack()
		if err != nil {
			return err
		}
		queries[i] = wire
	}
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		count     atomic.Int64
		errs      atomic.Int64
		mu        sync.Mutex
		lats      []time.Duration
		wg        sync.WaitGroup
	)
	for w := range *workers {
		conn, err := net.Dial("udp", *server)
		if err != nil {
			return err
		}
		defer conn.Close()
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			local := make([]time.Duration, 0, 1<<16)
			buf := make([]byte, 1500)
			q := make([]byte, 512)
			id := uint16(w << 10)
			for !stop.Load() {
				wire := queries[rng.IntN(len(queries))]
				q = append(q[:0], wire...)
				id++
				binary.BigEndian.PutUint16(q, id)
				start := time.Now()
				if _, err := conn.Write(q); err != nil {
					errs.Add(1)
					continue
				}
				_ = conn.SetReadDeadline(start.Add(time.Second))
				ok := false
				for {
					m, err := conn.Read(buf)
					if err != nil {
						break
					}
					if m >= 12 && binary.BigEndian.Uint16(buf) == id {
						ok = buf[3]&0x0f == 0 && binary.BigEndian.Uint16(buf[6:8]) > 0 // NOERROR with an answer
						break
					}
				}
				el := time.Since(start)
				if !measuring.Load() {
					continue
				}
				if !ok {
					errs.Add(1)
					continue
				}
				count.Add(1)
				local = append(local, el)
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		})
	}
	time.Sleep(*warmup)
	measuring.Store(true)
	start := time.Now()
	time.Sleep(*dur)
	measuring.Store(false)
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	slices.Sort(lats)
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		return float64(lats[min(len(lats)-1, int(p*float64(len(lats))))].Microseconds())
	}
	r := result{
		Server: *server, Label: *label, Workers: *workers, Seconds: elapsed.Seconds(), Services: *n,
		Queries: count.Load(), Errors: errs.Load(), QPS: float64(count.Load()) / elapsed.Seconds(),
		P50us: pct(0.50), P99us: pct(0.99), P999us: pct(0.999), MaxUs: pct(1),
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}
