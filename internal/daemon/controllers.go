package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"

	metricsclientset "k8s.io/metrics/pkg/client/clientset/versioned"

	"skiff.dev/skiff/internal/controllers/cronjob"
	"skiff.dev/skiff/internal/controllers/daemonset"
	"skiff.dev/skiff/internal/controllers/deployment"
	"skiff.dev/skiff/internal/controllers/disruption"
	"skiff.dev/skiff/internal/controllers/endpoints"
	"skiff.dev/skiff/internal/controllers/garbagecollector"
	"skiff.dev/skiff/internal/controllers/hpa"
	"skiff.dev/skiff/internal/controllers/job"
	"skiff.dev/skiff/internal/controllers/namespace"
	"skiff.dev/skiff/internal/controllers/nodelifecycle"
	"skiff.dev/skiff/internal/controllers/replicaset"
	"skiff.dev/skiff/internal/controllers/resourcequota"
	"skiff.dev/skiff/internal/controllers/serviceaccount"
	"skiff.dev/skiff/internal/controllers/servicelb"
	"skiff.dev/skiff/internal/controllers/statefulset"
	meshca "skiff.dev/skiff/internal/mesh/ca"
	"skiff.dev/skiff/internal/scheduler"
)

// controllerLeaseName is the Lease in kube-system that elects the server
// running the control loops when several share one etcd.
const controllerLeaseName = "skiff-controller-manager"

// loop is one control loop as the daemon runs it.
type loop interface {
	Run(ctx context.Context, workers int) error
}

// controllerDeps is what every controller constructor gets.
type controllerDeps struct {
	client   kubernetes.Interface
	meta     metadata.Interface
	metrics  metricsclientset.Interface
	factory  informers.SharedInformerFactory
	recorder func(component string) record.EventRecorder
	log      *slog.Logger
	// lbPool is the LoadBalancer address pool (servicelb's syntax).
	lbPool []string
	// meshCA signs mesh workload certificates (nil: no mesh signer).
	meshCA *meshca.CA
}

// controllers lists the control loops, by component name. Each
// constructor registers its informers on the shared factory.
func controllers(d controllerDeps) map[string]loop {
	loops := map[string]loop{
		"garbage-collector": garbagecollector.New(d.meta, d.log),
		"namespace":         namespace.New(d.client, d.meta, d.log),
		"replicaset":        replicaset.New(d.client, d.factory, d.recorder("replicaset-controller"), d.log, replicaset.Options{}),
		"deployment":        deployment.New(d.client, d.factory, d.recorder("deployment-controller"), d.log, deployment.Options{}),
		"scheduler":         scheduler.New(d.client, d.factory, d.recorder(corev1.DefaultSchedulerName), d.log, scheduler.Options{}),
		"node-lifecycle":    nodelifecycle.New(d.client, d.factory, d.recorder("node-controller"), d.log, nodelifecycle.Options{}),
		"statefulset":       statefulset.New(d.client, d.factory, d.recorder("statefulset-controller"), d.log, statefulset.Options{}),
		"daemonset":         daemonset.New(d.client, d.factory, d.recorder("daemonset-controller"), d.log, daemonset.Options{}),
		"job":               job.New(d.client, d.factory, d.recorder("job-controller"), d.log, job.Options{}),
		"cronjob":           cronjob.New(d.client, d.factory, d.recorder("cronjob-controller"), d.log, cronjob.Options{}),
		"endpoints":         endpoints.New(d.client, d.factory, d.recorder("endpoint-controller"), d.log, endpoints.Options{}),
		"serviceaccount":    serviceaccount.New(d.client, d.factory, d.recorder("serviceaccount-controller"), d.log, serviceaccount.Options{}),
		"resourcequota":     resourcequota.New(d.client, d.factory, d.recorder("resource-quota-controller"), d.log, resourcequota.Options{}),
		"servicelb":         servicelb.New(d.client, d.factory, d.recorder("service-lb-controller"), d.log, servicelb.Options{Pool: d.lbPool}),
		"disruption":        disruption.New(d.client, d.factory, d.recorder("controllermanager"), d.log, disruption.Options{}),
		"horizontal-pod-autoscaler": hpa.New(d.client, d.factory, d.recorder("horizontal-pod-autoscaler"), d.log,
			hpa.Options{Metrics: hpa.NewMetricsClient(d.metrics)}),
	}
	addMeshLoops(loops, d)
	return loops
}

// runControllers runs the control loops while this server holds the
// controller Lease; the returned channel closes when they have stopped
// after ctx ends.
func runControllers(ctx context.Context, cfg *rest.Config, dataDir string, lbPool []string, meshCA *meshca.CA, log *slog.Logger) (<-chan struct{}, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	metrics, err := metricsclientset.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, "kube-system", controllerLeaseName,
		cs.CoreV1(), cs.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: identity(dataDir)})
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// A server restarted on the same data dir has the same identity and
		// takes its Lease back at once; another server waits for it to lapse.
		for ctx.Err() == nil {
			leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
				Lock:            lock,
				LeaseDuration:   15 * time.Second,
				RenewDeadline:   10 * time.Second,
				RetryPeriod:     2 * time.Second,
				ReleaseOnCancel: true,
				Name:            controllerLeaseName,
				Callbacks: leaderelection.LeaderCallbacks{
					OnStartedLeading: func(ctx context.Context) { runLoops(ctx, cs, mc, metrics, lbPool, meshCA, log) },
					OnStoppedLeading: func() { log.Info("controller lease lost", "component", "controllers") },
				},
			})
		}
	}()
	return done, nil
}

// runLoops runs every control loop on one shared informer factory until
// ctx ends.
func runLoops(ctx context.Context, cs kubernetes.Interface, mc metadata.Interface, metrics metricsclientset.Interface, lbPool []string, meshCA *meshca.CA, log *slog.Logger) {
	log.Info("leading: starting control loops", "component", "controllers")
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	factory := informers.NewSharedInformerFactory(cs, 0)
	loops := controllers(controllerDeps{
		lbPool:  lbPool,
		meshCA:  meshCA,
		client:  cs,
		meta:    mc,
		metrics: metrics,
		factory: factory,
		recorder: func(component string) record.EventRecorder {
			return broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
		},
		log: log,
	})
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	for name, c := range loops {
		wg.Go(func() {
			if err := c.Run(ctx, 2); err != nil {
				log.Error("controller stopped", "component", name, "err", err)
			}
		})
	}
	wg.Wait()
	factory.Shutdown()
}

// identity names this server in the controller Lease: stable across
// restarts on the same data directory, distinct between servers.
func identity(dataDir string) string {
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte(dataDir))
	return host + "_" + hex.EncodeToString(sum[:4])
}
