package v1alpha1

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// Client reads and writes PodPresets through the API, in JSON (there is
// no protobuf form of these types).
type Client struct {
	rest rest.Interface
}

// NewForConfig returns a client for settings.k8s.io/v1alpha1. It does no
// I/O.
func NewForConfig(cfg *rest.Config) (*Client, error) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		return nil, err
	}
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &SchemeGroupVersion
	c.APIPath = "/apis"
	c.ContentType = runtime.ContentTypeJSON
	c.AcceptContentTypes = runtime.ContentTypeJSON
	c.NegotiatedSerializer = serializer.NewCodecFactory(s).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("settings.k8s.io client: %w", err)
	}
	return &Client{rest: rc}, nil
}

const podPresets = "podpresets"

// List lists the PodPresets of a namespace ("" = all).
func (c *Client) List(ctx context.Context, namespace string, opts metav1.ListOptions) (*PodPresetList, error) {
	out := &PodPresetList{}
	err := c.rest.Get().Namespace(namespace).Resource(podPresets).
		VersionedParams(&opts, metav1.ParameterCodec).Do(ctx).Into(out)
	return out, err
}

// Watch watches the PodPresets of a namespace ("" = all).
func (c *Client) Watch(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return c.rest.Get().Namespace(namespace).Resource(podPresets).
		VersionedParams(&opts, metav1.ParameterCodec).Watch(ctx)
}

// Get reads one PodPreset.
func (c *Client) Get(ctx context.Context, namespace, name string) (*PodPreset, error) {
	out := &PodPreset{}
	err := c.rest.Get().Namespace(namespace).Resource(podPresets).Name(name).Do(ctx).Into(out)
	return out, err
}

// Create creates a PodPreset in its namespace.
func (c *Client) Create(ctx context.Context, pp *PodPreset) (*PodPreset, error) {
	out := &PodPreset{}
	err := c.rest.Post().Namespace(pp.Namespace).Resource(podPresets).Body(pp).Do(ctx).Into(out)
	return out, err
}

// Delete deletes one PodPreset.
func (c *Client) Delete(ctx context.Context, namespace, name string) error {
	return c.rest.Delete().Namespace(namespace).Resource(podPresets).Name(name).Do(ctx).Error()
}

// NewInformer returns an informer of the PodPresets of every namespace,
// indexed by namespace. The caller runs it.
func NewInformer(c *Client, resync time.Duration) cache.SharedIndexInformer {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return c.List(ctx, metav1.NamespaceAll, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return c.Watch(ctx, metav1.NamespaceAll, opts)
		},
	}
	return cache.NewSharedIndexInformer(lw, &PodPreset{}, resync, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
}
