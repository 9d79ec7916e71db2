// Package metricsapi is Skiff's metrics-server: every Resolution it
// scrapes each Ready node's /metrics/resource (the kubelet's resource
// metrics, served by the node agent's package agent/stats) through a
// NodeGetter, keeps the last two points of every node and container,
// and serves metrics.k8s.io/v1beta1 NodeMetrics and PodMetrics from them
// (CPU as the rate between the two points, memory as the last working
// set) — what `kubectl top` and the HorizontalPodAutoscaler read. Its
// Handler answers the group's resource paths; the API server routes
// /apis/metrics.k8s.io/v1beta1/... to it and lists it in discovery. Only
// the daemon imports it.
package metricsapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// NodeGetter reaches a node agent's HTTP server: GET path on the named
// node (package nodeclient).
type NodeGetter interface {
	Get(ctx context.Context, nodeName, path string) (*http.Response, error)
}

// ResourceMetricsPath is the agent path scraped.
const ResourceMetricsPath = "/metrics/resource"

// GroupVersion is the API served.
var GroupVersion = metricsv1beta1.SchemeGroupVersion

// APIResources are the resources served, for discovery: as
// metrics-server registers them.
func APIResources() []metav1.APIResource {
	return []metav1.APIResource{
		{Name: "nodes", Namespaced: false, Kind: "NodeMetrics", Verbs: metav1.Verbs{"get", "list"}},
		{Name: "pods", Namespaced: true, Kind: "PodMetrics", Verbs: metav1.Verbs{"get", "list"}},
	}
}

// Options configure a Server.
type Options struct {
	// Resolution is how often nodes are scraped (default 15 s, as
	// metrics-server's --metric-resolution).
	Resolution time.Duration
	// ScrapeTimeout bounds one node's scrape (default the Resolution, at
	// most 10 s).
	ScrapeTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// maxBody bounds a node's answer (about 300 bytes per container).
const maxBody = 64 << 20

// Server scrapes the nodes and serves the metrics.
type Server struct {
	nodes NodeGetter
	log   *slog.Logger
	opts  Options

	nodeLister corelisters.NodeLister
	podLister  corelisters.PodLister
	synced     []cache.InformerSynced
	store      *storage

	mu       sync.Mutex
	failures map[string]string // node → scrape error, to log when it starts and ends
}

// New registers the node and pod informers on factory (the caller
// starts it); it does no I/O.
func New(factory informers.SharedInformerFactory, nodes NodeGetter, log *slog.Logger, opts Options) *Server {
	if opts.Resolution <= 0 {
		opts.Resolution = 15 * time.Second
	}
	if opts.ScrapeTimeout <= 0 {
		opts.ScrapeTimeout = min(opts.Resolution, 10*time.Second)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	ni := factory.Core().V1().Nodes()
	pi := factory.Core().V1().Pods()
	return &Server{
		nodes:      nodes,
		log:        log.With("component", "metricsapi"),
		opts:       opts,
		nodeLister: ni.Lister(),
		podLister:  pi.Lister(),
		synced:     []cache.InformerSynced{ni.Informer().HasSynced, pi.Informer().HasSynced},
		store:      newStorage(opts.Resolution),
		failures:   map[string]string{},
	}
}

// Run waits for the caches, then scrapes every Resolution until ctx
// ends.
func (s *Server) Run(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return nil
	}
	s.log.Info("scraping nodes", "resolution", s.opts.Resolution)
	t := time.NewTicker(s.opts.Resolution)
	defer t.Stop()
	for {
		s.scrape(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// scrape reads every Ready node concurrently and stores what came back.
func (s *Server) scrape(ctx context.Context) {
	nodes, err := s.nodeLister.List(labels.Everything())
	if err != nil {
		s.log.Warn("list nodes", "err", err)
		return
	}
	results := make(chan *batch, len(nodes))
	var wg sync.WaitGroup
	for _, n := range nodes {
		if !nodeReady(n) {
			continue
		}
		wg.Go(func() {
			b, err := s.scrapeNode(ctx, n.Name)
			s.noteResult(n.Name, err)
			if err == nil {
				results <- b
			}
		})
	}
	wg.Wait()
	close(results)
	if ctx.Err() != nil {
		return
	}
	all := newBatch()
	for b := range results {
		all.merge(b)
	}
	s.store.store(all)
}

func (s *Server) scrapeNode(ctx context.Context, node string) (*batch, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ScrapeTimeout)
	defer cancel()
	scraped := s.opts.Now()
	resp, err := s.nodes.Get(ctx, node, ResourceMetricsPath)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %q", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("answer larger than %d bytes", maxBody)
	}
	return decode(node, body, scraped)
}

// noteResult logs a node's scrape failing or recovering, once each.
func (s *Server) noteResult(node string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, failing := s.failures[node]
	switch {
	case err == nil && failing:
		delete(s.failures, node)
		s.log.Info("scraping node works again", "node", node)
	case err != nil && !failing:
		s.failures[node] = err.Error()
		s.log.Warn("scrape node", "node", node, "err", err)
	case err != nil:
		s.log.Debug("scrape node", "node", node, "err", err)
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
