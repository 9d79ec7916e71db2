package proxy

// clusterMetadata is the named cluster's Metadata (nil if none), which
// forwarding hands to RequestInfo.ClusterMetadata for telemetry.
func (c *compiler) clusterMetadata(name string) map[string]string {
	if c.meta == nil {
		c.meta = map[string]map[string]string{}
		for i := range c.cfg.Clusters {
			if cl := &c.cfg.Clusters[i]; len(cl.Metadata) > 0 {
				c.meta[cl.Name] = cl.Metadata
			}
		}
	}
	return c.meta[name]
}
