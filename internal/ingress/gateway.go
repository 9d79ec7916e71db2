package ingress

import "skiff.dev/skiff/internal/mesh/proxy"

// GatewaySource adds more to the edge proxy than Ingresses: Istio
// Gateways (internal/mesh/control's GatewayWatcher). The controller
// merges it into every configuration it builds and rebuilds when Changed
// fires.
type GatewaySource interface {
	// Merge returns base with the source's listeners, routes, clusters
	// and certificates added (base itself when it has none), and what
	// it had to leave out. It must not change base.
	Merge(base *proxy.Config) (*proxy.Config, []string)
	// Changed receives a value when Merge would give something new.
	Changed() <-chan struct{}
}

// mergeGateway applies the GatewaySource, if any, to cfg.
func (c *Controller) mergeGateway(cfg *proxy.Config) *proxy.Config {
	if c.opts.Gateway == nil {
		return cfg
	}
	merged, _ := c.opts.Gateway.Merge(cfg)
	if merged == nil {
		return cfg
	}
	return merged
}

// update applies cfg; when cfg has more than base (Gateways) and the
// proxy rejects it (a port taken, say), it applies base, so that
// Ingresses are served anyway.
func (c *Controller) update(cfg, base *proxy.Config) error {
	err := c.proxy.Update(cfg)
	if err == nil || cfg == base {
		return err
	}
	c.log.Error("configuration with Istio Gateways rejected; serving Ingresses only", "version", cfg.Version, "err", err)
	b := *base
	b.Version = cfg.Version + "-ingresses"
	return c.proxy.Update(&b)
}

// watchGateway resyncs whenever the GatewaySource changes, until done
// is closed.
func (c *Controller) watchGateway(done <-chan struct{}) {
	if c.opts.Gateway == nil {
		return
	}
	for {
		select {
		case <-done:
			return
		case <-c.opts.Gateway.Changed():
			c.loop.Add(syncKey)
		}
	}
}
