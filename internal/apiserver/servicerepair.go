package apiserver

import (
	"context"
	"errors"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/store"
)

// The repair pass keeps allocation records and Services consistent after
// crashes between a record's write and the Service's (or the other way
// round), as upstream's repair controllers do: it frees records whose
// Service is gone or no longer holds the value, and re-records values a
// Service holds without a record. It runs at start and then every
// repairInterval.

const (
	repairInterval = 3 * time.Minute
	// repairGrace is how old a record without a Service must be before it
	// is freed: younger ones may belong to a write still in flight.
	repairGrace = time.Minute
)

// runRepair repairs at once and then periodically until ctx ends.
func (s *Server) runRepair(ctx context.Context) {
	if s.svcAlloc == nil {
		return
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.repairAllocations(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("repairing service allocations", "err", err)
		}
		t.Reset(repairInterval)
	}
}

// repairAllocations runs one repair pass.
func (s *Server) repairAllocations(ctx context.Context) error {
	a, sk := s.svcAlloc, s.storageKind(serviceGK)
	if a == nil || sk == nil {
		return nil
	}
	// Records first: a record written after this read belongs to a write
	// this pass does not judge.
	ips, err := a.ips.list(ctx)
	if err != nil {
		return err
	}
	ports, err := a.ports.list(ctx)
	if err != nil {
		return err
	}
	services, err := s.listServices(ctx, sk)
	if err != nil {
		return err
	}
	heldIPs := map[uint64]owner{}
	heldPorts := map[uint64]owner{}
	for _, svc := range services {
		o := owner{svc.Namespace, svc.Name}
		if needsClusterIP(svc) && !isHeadless(svc) {
			for _, ip := range svc.Spec.ClusterIPs {
				addr, err := netip.ParseAddr(ip)
				if err != nil || addr.Is6() != a.cidr.Addr().Is6() {
					continue
				}
				off, ok := a.ipr.offset(addr)
				if !ok {
					s.log.Warn("service cluster IP is outside the service CIDR", "service", o.String(), "ip", ip, "cidr", a.cidr.String())
					continue
				}
				heldIPs[off] = o
				s.ensureRecord(ctx, a.ips, ips[off], off, o)
			}
		}
		for _, np := range serviceNodePorts(svc) {
			if !a.pr.Contains(int(np)) {
				s.log.Warn("service node port is outside the node port range", "service", o.String(), "port", np, "range", a.pr.String())
				continue
			}
			off := uint64(int(np) - a.pr.Base)
			heldPorts[off] = o
			s.ensureRecord(ctx, a.ports, ports[off], off, o)
		}
	}
	now := s.now()
	s.freeLeaked(ctx, a.ips, ips, heldIPs, now)
	s.freeLeaked(ctx, a.ports, ports, heldPorts, now)
	return nil
}

// ensureRecord re-records off for o when its record is missing.
func (s *Server) ensureRecord(ctx context.Context, r *allocRange, rec *record, off uint64, o owner) {
	switch {
	case rec == nil:
		_, err := r.allocate(ctx, off, o)
		if err == nil {
			s.log.Info("re-recorded a service allocation", "service", o.String(), "value", r.name(off))
		} else if !errors.Is(err, errAllocated) {
			s.log.Warn("re-recording a service allocation", "service", o.String(), "value", r.name(off), "err", err)
		}
	case rec.owner != o:
		s.log.Warn("a value is held by two services", "value", r.name(off), "service", o.String(), "recorded for", rec.owner.String())
	}
}

// freeLeaked deletes records no Service holds, once they are older than
// repairGrace.
func (s *Server) freeLeaked(ctx context.Context, r *allocRange, recs map[uint64]*record, held map[uint64]owner, now time.Time) {
	for off, rec := range recs {
		if o, ok := held[off]; ok && o == rec.owner {
			continue
		}
		if rec.owner.Namespace == foreignOwner {
			continue
		}
		if now.Sub(rec.created) < s.repairGrace {
			continue
		}
		if err := r.delete(ctx, off, rec.rev); err != nil {
			s.log.Warn("freeing a leaked service allocation", "value", r.name(off), "err", err)
			continue
		}
		s.log.Info("freed a leaked service allocation", "value", r.name(off), "recorded for", rec.owner.String())
	}
}

// listServices reads every Service from the store.
func (s *Server) listServices(ctx context.Context, k *kind) ([]*corev1.Service, error) {
	var out []*corev1.Service
	opts := store.ListOptions{Limit: 500}
	for {
		res, err := s.cfg.Store.List(ctx, k.prefix, opts)
		if err != nil {
			return nil, err
		}
		for _, kv := range res.Items {
			obj, err := k.decodeKV(kv)
			if err != nil {
				s.log.Warn("repair: skipping an undecodable service", "key", kv.Key, "err", err)
				continue
			}
			out = append(out, obj.(*corev1.Service))
		}
		if !res.More || len(res.Items) == 0 {
			return out, nil
		}
		opts.StartKey = res.Items[len(res.Items)-1].Key + "\x00"
		opts.Rev = res.Rev
	}
}
