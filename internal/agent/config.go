package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/agent/podruntime"
)

// Labels the agent puts on containers (the kubelet's names).
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
)

// envContext gathers what the downward API and service links need.
func (a *Agent) envContext(pod *corev1.Pod, sb *Sandbox) envContext {
	ec := envContext{
		objs:     newObjects(a.client, pod.Namespace),
		hostIP:   a.hostIP(),
		services: serviceEnv(a.svcLister, pod.Namespace, pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks),
	}
	switch {
	case pod.Spec.HostNetwork:
		ec.podIP = ec.hostIP
	case sb != nil:
		ec.podIP = sb.IP
	}
	if a.node != nil {
		ec.allocCPU = a.node.allocatable[corev1.ResourceCPU]
		ec.allocMem = a.node.allocatable[corev1.ResourceMemory]
		ec.allocStore = a.node.allocatable[corev1.ResourceEphemeralStorage]
	}
	return ec
}

// containerConfig turns a container of the pod into what the runtime
// creates: environment, command and args with $(VAR) expanded, mounts,
// security context, cgroup values.
func (a *Agent) containerConfig(ctx context.Context, pod *corev1.Pod, sb *Sandbox, c *corev1.Container, attempt int) (ContainerConfig, error) {
	ec := a.envContext(pod, sb)
	env, err := makeEnv(ctx, pod, c, ec)
	if err != nil {
		return ContainerConfig{}, err
	}
	mounts, err := a.containerMounts(pod, c, env)
	if err != nil {
		return ContainerConfig{}, err
	}
	termPath := c.TerminationMessagePath
	if termPath == "" {
		termPath = corev1.TerminationMessagePathDefault
	}
	cfg := ContainerConfig{
		PodUID:                 string(pod.UID),
		Name:                   c.Name,
		Attempt:                attempt,
		Image:                  c.Image,
		Command:                expandCommand(c.Command, env),
		Args:                   expandCommand(c.Args, env),
		WorkingDir:             c.WorkingDir,
		Mounts:                 mounts,
		TerminationMessagePath: termPath,
		OOMScoreAdj:            a.oomScoreAdj(pod, c),
		Stdin:                  c.Stdin,
		StdinOnce:              c.StdinOnce,
		TTY:                    c.TTY,
		Labels: map[string]string{
			labelPodName:       pod.Name,
			labelPodNamespace:  pod.Namespace,
			labelPodUID:        string(pod.UID),
			labelContainerName: c.Name,
		},
	}
	for _, e := range env {
		cfg.Env = append(cfg.Env, e.Name+"="+e.Value)
	}
	applySecurity(&cfg, pod.Spec.SecurityContext, c.SecurityContext)
	cfg.SeccompProfile = seccompProfile(pod.Spec.SecurityContext, c.SecurityContext)
	cg := containerCgroup(c.Resources)
	cfg.CPUShares, cfg.CPUQuota, cfg.CPUPeriod, cfg.MemoryLimit = cg.CPUShares, cg.CPUQuota, cg.CPUPeriod, cg.MemoryLimit
	return cfg, nil
}

// applySecurity maps the pod's and the container's securityContext onto
// the runtime's fields; the container's settings win.
func applySecurity(cfg *ContainerConfig, psc *corev1.PodSecurityContext, sc *corev1.SecurityContext) {
	if psc != nil {
		cfg.User = psc.RunAsUser
		cfg.Group = psc.RunAsGroup
		cfg.RunAsNonRoot = isTrue(psc.RunAsNonRoot)
		cfg.SupplementalGroups = append(cfg.SupplementalGroups, psc.SupplementalGroups...)
		if psc.FSGroup != nil {
			cfg.SupplementalGroups = append(cfg.SupplementalGroups, *psc.FSGroup)
		}
	}
	if sc == nil {
		return
	}
	if sc.RunAsUser != nil {
		cfg.User = sc.RunAsUser
	}
	if sc.RunAsGroup != nil {
		cfg.Group = sc.RunAsGroup
	}
	if sc.RunAsNonRoot != nil {
		cfg.RunAsNonRoot = *sc.RunAsNonRoot
	}
	cfg.Privileged = isTrue(sc.Privileged)
	cfg.ReadOnlyRootfs = isTrue(sc.ReadOnlyRootFilesystem)
	cfg.AllowPrivilegeEscalation = sc.AllowPrivilegeEscalation
	if sc.Capabilities != nil {
		for _, c := range sc.Capabilities.Add {
			cfg.CapAdd = append(cfg.CapAdd, string(c))
		}
		for _, c := range sc.Capabilities.Drop {
			cfg.CapDrop = append(cfg.CapDrop, string(c))
		}
	}
}

// seccompProfile is the container's seccomp profile: its own, else the
// pod's; Unconfined when neither says (the kubelet's default).
func seccompProfile(psc *corev1.PodSecurityContext, sc *corev1.SecurityContext) string {
	var p *corev1.SeccompProfile
	if psc != nil {
		p = psc.SeccompProfile
	}
	if sc != nil && sc.SeccompProfile != nil {
		p = sc.SeccompProfile
	}
	if p != nil && p.Type == corev1.SeccompProfileTypeRuntimeDefault {
		return podruntime.SeccompRuntimeDefault
	}
	return podruntime.SeccompUnconfined
}

// oomScoreAdj is the container's OOM score adjustment by its pod's QoS
// class, as the kubelet sets it: Guaranteed -997, BestEffort 1000,
// Burstable between 3 and 999 by its memory request's share of the
// node's memory.
func (a *Agent) oomScoreAdj(pod *corev1.Pod, c *corev1.Container) int {
	switch podQOS(&pod.Spec) {
	case corev1.PodQOSGuaranteed:
		return -997
	case corev1.PodQOSBestEffort:
		return 1000
	}
	capacity := int64(0)
	if a.node != nil {
		capacity = a.node.capacity.Memory().Value()
	}
	if capacity <= 0 {
		return 999
	}
	req := effectiveRequests(c.Resources)
	adj := 1000 - (1000*req.Memory().Value())/capacity
	return int(min(max(adj, 3), 999))
}

// sandboxConfig describes the pod's sandbox: hostname, DNS per
// dnsPolicy and dnsConfig, host aliases, namespaces.
func (a *Agent) sandboxConfig(pod *corev1.Pod) SandboxConfig {
	hostname := pod.Name
	if pod.Spec.Hostname != "" {
		hostname = pod.Spec.Hostname
	}
	if len(hostname) > 63 {
		hostname = strings.TrimRight(hostname[:63], "-.")
	}
	cfg := SandboxConfig{
		PodUID:                string(pod.UID),
		Namespace:             pod.Namespace,
		Name:                  pod.Name,
		Hostname:              hostname,
		HostNetwork:           pod.Spec.HostNetwork,
		HostIPC:               pod.Spec.HostIPC,
		HostPID:               pod.Spec.HostPID,
		HostAliases:           pod.Spec.HostAliases,
		ShareProcessNamespace: isTrue(pod.Spec.ShareProcessNamespace),
	}
	if pod.Spec.Subdomain != "" {
		cfg.HostDomain = pod.Spec.Subdomain + "." + pod.Namespace + ".svc." + a.opts.ClusterDomain
	}
	if sc := pod.Spec.SecurityContext; sc != nil && len(sc.Sysctls) > 0 {
		cfg.Sysctls = map[string]string{}
		for _, s := range sc.Sysctls {
			cfg.Sysctls[s.Name] = s.Value
		}
	}
	dns, warns := podDNS(pod, a.opts.ClusterDNS, a.opts.ClusterDomain, a.hostResolv())
	cfg.DNS, cfg.Searches, cfg.DNSOptions = dns.servers, dns.searches, dns.options
	for _, w := range warns {
		a.event(pod, "", corev1.EventTypeWarning, w.reason, "%s", w.message)
	}
	return cfg
}

// pullCredentials reads the pod's imagePullSecrets (dockerconfigjson or
// dockercfg); missing or malformed ones are skipped, as the kubelet does.
func (a *Agent) pullCredentials(ctx context.Context, pod *corev1.Pod) []ImageCredential {
	objs := newObjects(a.client, pod.Namespace)
	var out []ImageCredential
	for _, ref := range pod.Spec.ImagePullSecrets {
		if ref.Name == "" {
			continue
		}
		s, err := objs.secret(ctx, ref.Name)
		if err != nil {
			a.log.Info("image pull secret unavailable; the pull may fail", "pod", pod.Namespace+"/"+pod.Name, "secret", ref.Name, "err", err)
			continue
		}
		out = append(out, parseDockerConfig(s)...)
	}
	return out
}

// parseDockerConfig reads registry logins from a docker config secret.
func parseDockerConfig(s *corev1.Secret) []ImageCredential {
	type entry struct {
		Username      string `json:"username"`
		Password      string `json:"password"`
		Auth          string `json:"auth"`
		IdentityToken string `json:"identitytoken"`
	}
	auths := map[string]entry{}
	switch {
	case len(s.Data[corev1.DockerConfigJsonKey]) > 0:
		var doc struct {
			Auths map[string]entry `json:"auths"`
		}
		if json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &doc) != nil {
			return nil
		}
		auths = doc.Auths
	case len(s.Data[corev1.DockerConfigKey]) > 0:
		if json.Unmarshal(s.Data[corev1.DockerConfigKey], &auths) != nil {
			return nil
		}
	}
	var out []ImageCredential
	for reg, e := range auths {
		c := ImageCredential{Registry: reg, Username: e.Username, Password: e.Password, Auth: e.Auth, IdentityToken: e.IdentityToken}
		if c.Username == "" && c.Auth != "" {
			if raw, err := base64.StdEncoding.DecodeString(c.Auth); err == nil {
				if u, p, ok := strings.Cut(string(raw), ":"); ok {
					c.Username, c.Password = u, p
				}
			}
		}
		out = append(out, c)
	}
	return out
}
