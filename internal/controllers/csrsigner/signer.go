// Package csrsigner is the server's signer of mesh workload certificates:
// it approves or denies CertificateSigningRequests for the signer
// skiff.dev/mesh-workload (see internal/mesh/ca for the convention) and
// signs the approved ones with the mesh CA. It also garbage-collects old
// CertificateSigningRequests of every signer, as upstream's csrcleaner,
// and publishes the mesh roots in every namespace (RootPublisher).
//
// Only the daemon should import this package.
package csrsigner

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	certlisters "k8s.io/client-go/listers/certificates/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"skiff.dev/skiff/internal/controllers/workloop"
	"skiff.dev/skiff/internal/mesh/ca"
)

// Signer signs a request for a SPIFFE ID (the mesh CA).
type Signer interface {
	Sign(csrPEM []byte, id ca.SPIFFEID, ttl time.Duration) ([]byte, error)
	TrustDomain() string
	// TTL is the default (and longest) lifetime it signs for.
	TTL() time.Duration
}

// Options tune the controller.
type Options struct {
	// CA signs the approved requests; required.
	CA Signer
	// Garbage collection, as upstream's csrcleaner: requests approved or
	// issued (Approved), denied (Denied) or failed (Failed) this long ago,
	// pending ones this old (Pending), and issued ones whose certificate
	// expired go. Zero means upstream's 1h, 1h, 1h, 24h.
	Approved, Denied, Failed, Pending time.Duration
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Controller approves, signs and cleans up CertificateSigningRequests.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	opts     Options
	csrs     certlisters.CertificateSigningRequestLister
	pods     corelisters.PodLister
	loop     *workloop.Loop
}

// New registers the controller's handlers on factory. It does no I/O.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger, opts Options) *Controller {
	for _, d := range []*time.Duration{&opts.Approved, &opts.Denied, &opts.Failed} {
		if *d <= 0 {
			*d = time.Hour
		}
	}
	if opts.Pending <= 0 {
		opts.Pending = 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	csrInf := factory.Certificates().V1().CertificateSigningRequests()
	podInf := factory.Core().V1().Pods()
	c := &Controller{
		client:   client,
		recorder: recorder,
		log:      log.With("component", "csr-signer"),
		opts:     opts,
		csrs:     csrInf.Lister(),
		pods:     podInf.Lister(),
	}
	c.loop = workloop.New("csr-signer", c.log, c.sync)
	enqueue := func(obj any) {
		if csr, ok := obj.(*certificatesv1.CertificateSigningRequest); ok {
			c.loop.Add(csr.Name)
		}
	}
	_, _ = csrInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, cur any) { enqueue(cur) },
	})
	c.loop.WaitFor(csrInf.Informer().HasSynced, podInf.Informer().HasSynced)
	return c
}

// Run waits for the caches and works until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) error {
	if c.opts.CA == nil {
		return fmt.Errorf("csr signer: no CA")
	}
	return c.loop.Run(ctx, workers)
}

// sync looks at one request: removes it when old, decides it when it is
// ours and pending, signs it when ours and approved; otherwise it asks to
// be looked at again when it will be old.
func (c *Controller) sync(ctx context.Context, name string) error {
	csr, err := c.csrs.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if wait := c.untilGarbage(csr); wait <= 0 {
		err := c.client.CertificatesV1().CertificateSigningRequests().Delete(ctx, name,
			metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &csr.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return err
		}
		c.log.Debug("removed old certificate signing request", "csr", name)
		return nil
	}
	if csr.Spec.SignerName == ca.SignerName && !has(csr, certificatesv1.CertificateDenied) && !has(csr, certificatesv1.CertificateFailed) {
		switch {
		case !has(csr, certificatesv1.CertificateApproved):
			return c.decide(ctx, csr)
		case len(csr.Status.Certificate) == 0:
			return c.sign(ctx, csr)
		}
	}
	return workloop.RetryAfter(c.untilGarbage(csr), nil)
}

// decide approves a pending request or denies it with the reason.
func (c *Controller) decide(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) error {
	cond := certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
		Reason: "AutoApproved", Message: "the requester runs the pod, which has the identity requested",
	}
	if reason, err := c.check(ctx, csr); err != nil {
		return err
	} else if reason != "" {
		cond = certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue,
			Reason: "NotAuthorized", Message: reason,
		}
		c.recorder.Event(csr, corev1.EventTypeWarning, "Denied", reason)
		c.log.Info("denied workload certificate", "csr", csr.Name, "requester", csr.Spec.Username, "reason", reason)
	}
	csr = csr.DeepCopy()
	csr.Status.Conditions = append(csr.Status.Conditions, cond)
	_, err := c.client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{})
	return err
}

// check returns why csr may not be approved ("" when it may), or an
// error when that cannot be decided now.
func (c *Controller) check(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) (string, error) {
	req, err := ca.ParseRequest(csr.Spec.Request)
	if err != nil {
		return err.Error(), nil
	}
	id, err := ca.RequestID(req)
	if err != nil {
		return err.Error(), nil
	}
	if id.TrustDomain != c.opts.CA.TrustDomain() {
		return fmt.Sprintf("trust domain %q is not the mesh's %q", id.TrustDomain, c.opts.CA.TrustDomain()), nil
	}
	for _, u := range csr.Spec.Usages {
		switch u {
		case certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment,
			certificatesv1.UsageServerAuth, certificatesv1.UsageClientAuth:
		default:
			return fmt.Sprintf("usage %q is not one of a workload certificate's", u), nil
		}
	}
	ns, podName := csr.Annotations[ca.PodNamespaceAnnotation], csr.Annotations[ca.PodNameAnnotation]
	if ns == "" || podName == "" {
		return fmt.Sprintf("the request names no pod (annotations %s and %s)", ca.PodNamespaceAnnotation, ca.PodNameAnnotation), nil
	}
	pod, err := c.pods.Pods(ns).Get(podName)
	if apierrors.IsNotFound(err) {
		// The node may know of the pod before this cache does.
		pod, err = c.client.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return fmt.Sprintf("pod %s/%s does not exist", ns, podName), nil
	}
	if err != nil {
		return "", err
	}
	if uid := csr.Annotations[ca.PodUIDAnnotation]; uid != "" && uid != string(pod.UID) {
		return fmt.Sprintf("pod %s/%s has UID %s, not %s", ns, podName, pod.UID, uid), nil
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	if id.Namespace != pod.Namespace || id.ServiceAccount != sa {
		return fmt.Sprintf("pod %s/%s runs as %s, not %s", ns, podName,
			ca.SPIFFEID{TrustDomain: id.TrustDomain, Namespace: pod.Namespace, ServiceAccount: sa}, id), nil
	}
	if slices.Contains(csr.Spec.Groups, "system:masters") {
		return "", nil
	}
	node, isNode := strings.CutPrefix(csr.Spec.Username, "system:node:")
	if !isNode || !slices.Contains(csr.Spec.Groups, "system:nodes") {
		return fmt.Sprintf("requester %q is neither a node nor an admin", csr.Spec.Username), nil
	}
	if pod.Spec.NodeName != node {
		return fmt.Sprintf("pod %s/%s does not run on node %s", ns, podName, node), nil
	}
	return "", nil
}

// sign issues the certificate of an approved request, or marks it Failed
// when the CA refuses.
func (c *Controller) sign(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) error {
	csr = csr.DeepCopy()
	var ttl time.Duration
	if s := csr.Spec.ExpirationSeconds; s != nil {
		ttl = time.Duration(*s) * time.Second
	}
	cert, err := c.signRequest(csr, ttl)
	if err != nil {
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue,
			Reason: "SigningFailed", Message: err.Error(),
		})
		c.log.Info("signing failed", "csr", csr.Name, "err", err)
	} else {
		csr.Status.Certificate = cert
	}
	_, err = c.client.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, csr, metav1.UpdateOptions{})
	return err
}

func (c *Controller) signRequest(csr *certificatesv1.CertificateSigningRequest, ttl time.Duration) ([]byte, error) {
	req, err := ca.ParseRequest(csr.Spec.Request)
	if err != nil {
		return nil, err
	}
	id, err := ca.RequestID(req)
	if err != nil {
		return nil, err
	}
	if ttl > 0 {
		// A request may ask for less than the CA's lifetime, never more.
		ttl = min(ttl, c.opts.CA.TTL())
	}
	return c.opts.CA.Sign(csr.Spec.Request, id, ttl)
}

// untilGarbage is how long csr has before the cleaner removes it.
func (c *Controller) untilGarbage(csr *certificatesv1.CertificateSigningRequest) time.Duration {
	now := c.opts.Now()
	wait := csr.CreationTimestamp.Add(c.opts.Pending).Sub(now)
	for _, cond := range csr.Status.Conditions {
		var keep time.Duration
		switch cond.Type {
		case certificatesv1.CertificateApproved:
			keep = c.opts.Approved
		case certificatesv1.CertificateDenied:
			keep = c.opts.Denied
		case certificatesv1.CertificateFailed:
			keep = c.opts.Failed
		default:
			continue
		}
		at := cond.LastUpdateTime.Time
		if at.IsZero() {
			at = csr.CreationTimestamp.Time
		}
		wait = min(wait, at.Add(keep).Sub(now))
	}
	if certs, err := ca.ParseCertificates(csr.Status.Certificate); err == nil {
		wait = min(wait, certs[0].NotAfter.Sub(now))
	}
	return wait
}

func has(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
