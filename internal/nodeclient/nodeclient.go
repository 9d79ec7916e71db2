// Package nodeclient is how the control plane reaches node agents (the
// kubelet's port, 10250 by default): it finds a node's address and port
// in its Node object (status.addresses, InternalIP first;
// status.daemonEndpoints.kubeletEndpoint.port) and talks HTTPS to it with
// the client certificate it is given, which the agents accept when the
// cluster CA signed it.
//
// The API server uses it (through its NodeConnector interface) for
// pods/log, pods/exec, pods/attach, pods/portforward and nodes/proxy; the
// metrics API scrapes the agents' /metrics/resource with Get. The daemon
// builds it; nothing else in the node agent imports it.
package nodeclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/errdefs"
)

// DefaultPort is the agent server's port when a Node publishes none.
const DefaultPort = 10250

// NodeGetter reads Node objects. A clientset's CoreV1().Nodes() is one;
// NodeGetterFunc adapts anything else (a lister).
type NodeGetter interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Node, error)
}

// NodeGetterFunc adapts a function to NodeGetter.
type NodeGetterFunc func(ctx context.Context, name string) (*corev1.Node, error)

// Get implements NodeGetter.
func (f NodeGetterFunc) Get(ctx context.Context, name string, _ metav1.GetOptions) (*corev1.Node, error) {
	return f(ctx, name)
}

// addressOrder is the preference among a Node's addresses.
var addressOrder = []corev1.NodeAddressType{
	corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeInternalDNS, corev1.NodeHostName, corev1.NodeExternalDNS,
}

// Client reaches node agents. Its methods are safe for concurrent use.
type Client struct {
	nodes     NodeGetter
	transport *http.Transport
}

// New returns a Client that looks nodes up with nodes and connects with
// tlsConfig (cloned): its client certificate authenticates the caller;
// agents serve self-signed certificates, so a config without RootCAs
// needs InsecureSkipVerify, as kube-apiserver does by default. It does
// no I/O.
func New(nodes NodeGetter, tlsConfig *tls.Config) *Client {
	var cfg *tls.Config
	if tlsConfig != nil {
		cfg = tlsConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	// Streams (exec, attach, port-forward) are HTTP/1.1 upgrades.
	cfg.NextProtos = []string{"http/1.1"}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return &Client{
		nodes: nodes,
		transport: &http.Transport{
			Proxy:               nil, // node addresses are reached directly
			DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     cfg,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// Transport is the round tripper that reaches agents (with the client
// certificate). Streaming upgrades work through it.
func (c *Client) Transport() http.RoundTripper { return c.transport }

// Location returns the base URL of the node's agent server
// (https://address:port) and the transport to reach it with. A missing
// Node is the getter's error (a NotFound API status for a clientset) or
// wraps errdefs.ErrNotFound; a Node without an address wraps
// errdefs.ErrUnavailable.
func (c *Client) Location(ctx context.Context, nodeName string) (*url.URL, http.RoundTripper, error) {
	u, err := c.base(ctx, nodeName)
	if err != nil {
		return nil, nil, err
	}
	return u, c.transport, nil
}

// URL returns the URL of path (which may carry a query, e.g.
// "/containerLogs/ns/pod/c?follow=true") on the node's agent server.
func (c *Client) URL(ctx context.Context, nodeName, path string) (*url.URL, error) {
	ref, err := url.Parse(path)
	if err != nil {
		return nil, fmt.Errorf("path %q: %v: %w", path, err, errdefs.ErrInvalid)
	}
	if ref.Scheme != "" || ref.Host != "" || !strings.HasPrefix(ref.Path, "/") {
		return nil, fmt.Errorf("path %q: want an absolute path without scheme or host: %w", path, errdefs.ErrInvalid)
	}
	base, err := c.base(ctx, nodeName)
	if err != nil {
		return nil, err
	}
	return base.ResolveReference(ref), nil
}

// Get GETs path on the node's agent server. A response other than 2xx is
// an error carrying the status and the start of the body (404 wraps
// errdefs.ErrNotFound, 401 and 403 errdefs.ErrUnauthorized, others
// errdefs.ErrUnavailable); otherwise the caller reads and closes the
// body. ctx bounds the whole exchange, body included.
func (c *Client) Get(ctx context.Context, nodeName, path string) (*http.Response, error) {
	u, err := c.URL(ctx, nodeName, path)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("node %s: %v: %w", nodeName, err, errdefs.ErrInvalid)
	}
	resp, err := c.transport.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("node %s: GET %s: %v: %w", nodeName, path, err, errdefs.ErrUnavailable)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	kind := errdefs.ErrUnavailable
	switch resp.StatusCode {
	case http.StatusNotFound:
		kind = errdefs.ErrNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		kind = errdefs.ErrUnauthorized
	}
	return nil, fmt.Errorf("node %s: GET %s: %s: %s: %w", nodeName, path, resp.Status, strings.TrimSpace(string(body)), kind)
}

// base is https://address:port of the node's agent.
func (c *Client) base(ctx context.Context, nodeName string) (*url.URL, error) {
	if nodeName == "" {
		return nil, fmt.Errorf("no node name: %w", errdefs.ErrInvalid)
	}
	if c.nodes == nil {
		return nil, fmt.Errorf("node %s: no way to look nodes up: %w", nodeName, errdefs.ErrUnavailable)
	}
	node, err := c.nodes.Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		var st apierrors.APIStatus
		if errors.As(err, &st) || errors.Is(err, errdefs.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("node %s: %v: %w", nodeName, err, errdefs.ErrUnavailable)
	}
	host, err := NodeAddress(node)
	if err != nil {
		return nil, err
	}
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	if port <= 0 {
		port = DefaultPort
	}
	return &url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(int(port)))}, nil
}

// NodeAddress picks the address to reach a node at: its InternalIP, else
// its ExternalIP, InternalDNS, Hostname or ExternalDNS, in that order.
func NodeAddress(node *corev1.Node) (string, error) {
	for _, t := range addressOrder {
		for _, a := range node.Status.Addresses {
			if a.Type == t && a.Address != "" {
				return a.Address, nil
			}
		}
	}
	return "", fmt.Errorf("node %s has no address (known addresses: %v): %w", node.Name, node.Status.Addresses, errdefs.ErrUnavailable)
}
