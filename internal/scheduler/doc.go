// Package scheduler assigns pending pods to nodes the way kube-scheduler's
// default profile does, and binds them through the pods/binding
// subresource.
//
// It is split in two halves:
//
//   - placement (snapshot.go, framework.go and one file per plugin) is pure:
//     functions over a Snapshot of nodes and the pods on them, behind the
//     small FilterPlugin and ScorePlugin interfaces. Tables test it without
//     an API server.
//   - the Scheduler (scheduler.go, handlers.go, cache.go, queue.go,
//     bind.go) is the reconcile loop: informers feed a cache of nodes and
//     of the pods bound or assumed on them, a queue hands pending pods to
//     workers, a worker
//     runs one scheduling cycle against the cache, assumes the pod on the
//     chosen node (so a burst of pods does not overcommit a node before the
//     informer shows the bindings) and binds it in the background. Pods that
//     fit nowhere get a FailedScheduling event and a PodScheduled=False
//     condition, and are retried when nodes or pods change, and
//     periodically.
//
// The filters, in upstream's order: NodeUnschedulable, NodeName,
// TaintToleration, NodeAffinity (nodeSelector and required node affinity),
// NodePorts, NodeResourcesFit, PodTopologySpread (DoNotSchedule
// constraints) and InterPodAffinity. The scores, with upstream's weights:
// TaintToleration (PreferNoSchedule, 3), NodeAffinity (preferred terms, 2),
// InterPodAffinity (preferred terms, 2), PodTopologySpread (ScheduleAnyway
// constraints, 2), spreading of replicas of one owner across nodes and
// zones for pods without constraints (2), least allocated (1) and balanced
// allocation (1). Failure messages use upstream's wording. Preemption is
// not implemented: its part of the message says what upstream's would
// find when it finds nothing to preempt.
//
// Only the daemon should import this package; it never imports the API
// server.
package scheduler
