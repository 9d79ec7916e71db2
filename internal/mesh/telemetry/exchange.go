package telemetry

import (
	"encoding/base64"
	"encoding/json"
	"sync"
)

// PeerHeader carries a sidecar's workload to the other side of an HTTP
// exchange (Istio's x-envoy-peer-metadata): the outbound sidecar adds it
// to requests, the inbound one reads and removes it and adds its own to
// the response, which the outbound one reads and removes. Its value is
// the unpadded base64url encoding of a small JSON object (peer).
const PeerHeader = "X-Skiff-Peer-Metadata"

// maxPeerHeader bounds a PeerHeader value that is decoded; longer ones
// are ignored (the peer is then unknown).
const maxPeerHeader = 2048

// peer is the part of a workload that metadata exchange carries: what
// Istio's standard labels need. Short JSON names keep the header small.
type peer struct {
	Workload          string `json:"w,omitempty"`
	Namespace         string `json:"n,omitempty"`
	App               string `json:"a,omitempty"`
	Version           string `json:"v,omitempty"`
	CanonicalService  string `json:"cs,omitempty"`
	CanonicalRevision string `json:"cr,omitempty"`
	// Principal is the SPIFFE ID without "spiffe://".
	Principal string `json:"p,omitempty"`
	Cluster   string `json:"c,omitempty"`

	// principal is Principal as a label (set by clamp).
	principal string
}

var unknownPeer = peer{Workload: Unknown, Namespace: Unknown, App: Unknown, Version: Unknown,
	CanonicalService: Unknown, CanonicalRevision: Unknown, Cluster: Unknown}

// clamp makes every field a label value (the principal stays raw: it is
// labelled through principalLabel).
func (p *peer) clamp() {
	for _, f := range []*string{&p.Workload, &p.Namespace, &p.App, &p.Version, &p.CanonicalService,
		&p.CanonicalRevision, &p.Cluster} {
		*f = clampLabel(*f)
	}
	if len(p.Principal) > maxLabelLen {
		p.Principal = p.Principal[:maxLabelLen]
	}
	p.principal = principalLabel(p.Principal)
}

func (p *peer) encode() string {
	b, _ := json.Marshal(p) // plain strings: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePeer parses a PeerHeader value; nil when it is not one.
func decodePeer(v string) *peer {
	if v == "" || len(v) > maxPeerHeader {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return nil
	}
	p := new(peer)
	if err := json.Unmarshal(b, p); err != nil {
		return nil
	}
	p.clamp()
	return p
}

// maxCachedPeers bounds the decoded-header cache; it starts over when
// full (a sidecar talks to few distinct workloads).
const maxCachedPeers = 1024

// peerCache keeps decoded PeerHeader values, so that most requests
// decode nothing.
type peerCache struct {
	mu sync.Mutex
	m  map[string]*peer
}

func (c *peerCache) get(v string) *peer {
	if v == "" {
		return nil
	}
	c.mu.Lock()
	p, ok := c.m[v]
	c.mu.Unlock()
	if ok {
		return p
	}
	p = decodePeer(v)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedPeers {
		c.m = make(map[string]*peer)
	}
	c.m[v] = p
	c.mu.Unlock()
	return p
}
