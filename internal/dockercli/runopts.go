package dockercli

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

// containerOptions are the flags run and create share, as parsed.
type containerOptions struct {
	attach, env, envFile, labels, volumes, tmpfs, publish, expose *listValue
	networks, aliases, capAdd, capDrop, groupAdd, securityOpt     *listValue
	sysctls, extraHosts, dns, dnsSearch, dnsOptions               *listValue
	mounts                                                        mountsValue
	ulimits                                                       ulimitsValue
	restart                                                       restartValue
	memory, memorySwap, memoryReservation, shmSize                bytesValue
	cpus                                                          cpusValue

	interactive, tty, autoRemove, publishAll, privileged, readOnly, init bool
	name, user, workdir, entrypoint, hostname, domainname, stopSignal    string
	cpusetCpus, cpusetMems, ipc, pid, uts, cgroupParent, runtime         string
	cpuShares, pidsLimit                                                 int64
	stopTimeout                                                          int
}

// addContainerFlags declares the container flags on fs.
func addContainerFlags(fs *pflag.FlagSet) *containerOptions {
	o := &containerOptions{
		attach:      newList(ParseAttach),
		env:         newList(func(s string) (string, error) { return ParseEnv(s, os.LookupEnv) }),
		envFile:     newList(nil),
		labels:      newList(ParseLabel),
		volumes:     newList(checkWith(ParseVolume)),
		tmpfs:       newList(func(s string) (string, error) { _, _, err := ParseTmpfs(s); return s, err }),
		publish:     newList(checkWith(ParsePortSpec)),
		expose:      newList(checkExpose),
		networks:    newList(checkNetwork),
		aliases:     newList(nil),
		capAdd:      newList(nil),
		capDrop:     newList(nil),
		groupAdd:    newList(nil),
		securityOpt: newList(ParseSecurityOpt),
		sysctls:     newList(ParseSysctl),
		extraHosts:  newList(ParseExtraHost),
		dns:         newList(ParseIP),
		dnsSearch:   newList(nil),
		dnsOptions:  newList(nil),
		memorySwap:  bytesValue{swap: true},
		restart:     restartValue{raw: "no", policy: container.RestartPolicy{Name: container.RestartPolicyDisabled}},
	}
	fs.VarP(o.attach, "attach", "a", "Attach to STDIN, STDOUT or STDERR")
	fs.VarP(o.env, "env", "e", "Set environment variables")
	fs.Var(o.envFile, "env-file", "Read in a file of environment variables")
	fs.VarP(o.labels, "label", "l", "Set meta data on a container")
	fs.VarP(o.volumes, "volume", "v", "Bind mount a volume")
	fs.Var(&o.mounts, "mount", "Attach a filesystem mount to the container")
	fs.Var(o.tmpfs, "tmpfs", "Mount a tmpfs directory")
	fs.VarP(o.publish, "publish", "p", "Publish a container's port(s) to the host")
	fs.BoolVarP(&o.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	fs.Var(o.expose, "expose", "Expose a port or a range of ports")
	fs.Var(o.networks, "network", "Connect a container to a network")
	fs.Var(o.networks, "net", "Connect a container to a network")
	_ = fs.MarkHidden("net")
	fs.Var(o.aliases, "network-alias", "Add network-scoped alias for the container")
	fs.Var(o.aliases, "net-alias", "Add network-scoped alias for the container")
	_ = fs.MarkHidden("net-alias")
	fs.Var(&o.restart, "restart", "Restart policy to apply when a container exits")
	fs.VarP(&o.memory, "memory", "m", "Memory limit")
	fs.Var(&o.memorySwap, "memory-swap", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fs.Var(&o.memoryReservation, "memory-reservation", "Memory soft limit")
	fs.Var(&o.cpus, "cpus", "Number of CPUs")
	fs.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.StringVar(&o.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fs.Var(&o.ulimits, "ulimit", "Ulimit options")
	fs.Var(o.capAdd, "cap-add", "Add Linux capabilities")
	fs.Var(o.capDrop, "cap-drop", "Drop Linux capabilities")
	fs.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	fs.Var(o.securityOpt, "security-opt", "Security Options")
	fs.Var(o.sysctls, "sysctl", "Sysctl options")
	fs.Var(&o.shmSize, "shm-size", "Size of /dev/shm")
	fs.Var(o.groupAdd, "group-add", "Add additional groups to join")
	fs.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	fs.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fs.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	fs.StringVar(&o.domainname, "domainname", "", "Container NIS domain name")
	fs.BoolVar(&o.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	fs.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	fs.IntVar(&o.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fs.Var(o.extraHosts, "add-host", "Add a custom host-to-IP mapping (host:ip)")
	fs.Var(o.dns, "dns", "Set custom DNS servers")
	fs.Var(o.dnsSearch, "dns-search", "Set custom DNS search domains")
	fs.Var(o.dnsOptions, "dns-option", "Set DNS options")
	fs.BoolVar(&o.init, "init", false, "Run an init inside the container that forwards signals and reaps processes (accepted, not yet supported)")
	fs.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.BoolVar(&o.autoRemove, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")
	fs.StringVar(&o.ipc, "ipc", "", "IPC mode to use")
	fs.StringVar(&o.pid, "pid", "", "PID namespace to use")
	fs.StringVar(&o.uts, "uts", "", "UTS namespace to use")
	fs.StringVar(&o.cgroupParent, "cgroup-parent", "", "Optional parent cgroup for the container")
	fs.StringVar(&o.runtime, "runtime", "", "Runtime to use for this container")
	return o
}

func checkExpose(s string) (string, error) {
	if strings.Contains(s, ":") {
		return "", fmt.Errorf("invalid port format for --expose: %s", s)
	}
	port, proto, _ := strings.Cut(s, "/")
	if proto == "" {
		proto = "tcp"
	}
	if _, _, err := parsePortRange(port); err != nil {
		return "", fmt.Errorf("invalid range format for --expose: %s, error: %w", s, err)
	}
	switch strings.ToLower(proto) {
	case "tcp", "udp", "sctp":
		return s, nil
	}
	return "", errors.New("invalid proto: " + proto)
}

// checkNetwork checks --network: bridge, host, none, container:NAME or a
// network's name.
func checkNetwork(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", errors.New("no name set for network")
	}
	if name, ok := strings.CutPrefix(s, "container:"); ok && name == "" {
		return "", errors.New("--network: container: requires a container name or ID")
	}
	return s, nil
}

// containerConfig is what POST /containers/create takes.
type containerConfig struct {
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
}

// build turns the options, the image and its arguments into a create
// request. It reads --env-file files but talks to nobody.
func (o *containerOptions) build(fs *pflag.FlagSet, image string, args []string) (*containerConfig, error) {
	attachIn, attachOut, attachErr := false, false, false
	for _, a := range o.attach.values {
		switch a {
		case "stdin":
			attachIn = true
		case "stdout":
			attachOut = true
		case "stderr":
			attachErr = true
		}
	}
	if o.interactive {
		attachIn = true
	}
	if len(o.attach.values) == 0 {
		attachOut, attachErr = true, true
	}

	exposed, bindings, err := ParsePorts(o.publish.values)
	if err != nil {
		return nil, err
	}
	for _, e := range o.expose.values {
		port, proto, _ := strings.Cut(e, "/")
		start, end, _ := parsePortRange(port)
		if proto == "" {
			proto = "tcp"
		}
		for p := int(start); p <= int(end); p++ {
			pp, _ := network.PortFrom(uint16(p), network.IPProtocol(strings.ToLower(proto)))
			exposed[pp] = struct{}{}
		}
	}

	var binds []string
	volumes := map[string]struct{}{}
	for _, spec := range o.volumes.values {
		v, err := ParseVolume(spec)
		if err != nil {
			return nil, err
		}
		if v.Source == "" {
			volumes[v.Target] = struct{}{}
		} else {
			binds = append(binds, v.Bind())
		}
	}

	var env []string
	for _, f := range o.envFile.values {
		fromFile, err := readEnvFile(f)
		if err != nil {
			return nil, err
		}
		env = append(env, fromFile...)
	}
	env = append(env, o.env.values...)

	tmpfs := map[string]string{}
	for _, t := range o.tmpfs.values {
		target, opts, _ := ParseTmpfs(t)
		tmpfs[target] = opts
	}
	sysctls := map[string]string{}
	for _, s := range o.sysctls.values {
		k, v, _ := strings.Cut(s, "=")
		sysctls[k] = v
	}
	dns := []netip.Addr{} // never nil, as docker sends them
	for _, d := range o.dns.values {
		dns = append(dns, netip.MustParseAddr(d))
	}

	if o.autoRemove && o.restart.policy.Name != "" && o.restart.policy.Name != container.RestartPolicyDisabled {
		return nil, errors.New("conflicting options: cannot specify both --restart and --rm")
	}

	cfg := &container.Config{
		Hostname:     o.hostname,
		Domainname:   o.domainname,
		User:         o.user,
		AttachStdin:  attachIn,
		AttachStdout: attachOut,
		AttachStderr: attachErr,
		ExposedPorts: exposed,
		Tty:          o.tty,
		OpenStdin:    o.interactive,
		StdinOnce:    o.interactive && attachIn,
		Env:          env,
		Cmd:          args,
		Image:        image,
		Volumes:      volumes,
		WorkingDir:   o.workdir,
		Labels:       ParseLabels(o.labels.values),
		StopSignal:   o.stopSignal,
	}
	if len(args) == 0 {
		cfg.Cmd = nil
	}
	if o.entrypoint != "" {
		cfg.Entrypoint = []string{o.entrypoint}
	} else if fs.Changed("entrypoint") {
		cfg.Entrypoint = []string{""} // --entrypoint= resets the image's
	}
	if fs.Changed("stop-timeout") {
		t := o.stopTimeout
		cfg.StopTimeout = &t
	}

	networkMode, endpoints, err := o.networking()
	if err != nil {
		return nil, err
	}
	host := &container.HostConfig{
		Binds:           binds,
		NetworkMode:     networkMode,
		PortBindings:    bindings,
		RestartPolicy:   o.restart.policy,
		AutoRemove:      o.autoRemove,
		CapAdd:          o.capAdd.values,
		CapDrop:         o.capDrop.values,
		DNS:             dns,
		DNSSearch:       append([]string{}, o.dnsSearch.values...),
		DNSOptions:      append([]string{}, o.dnsOptions.values...),
		ExtraHosts:      o.extraHosts.values,
		GroupAdd:        o.groupAdd.values,
		IpcMode:         container.IpcMode(o.ipc),
		PidMode:         container.PidMode(o.pid),
		UTSMode:         container.UTSMode(o.uts),
		Privileged:      o.privileged,
		PublishAllPorts: o.publishAll,
		ReadonlyRootfs:  o.readOnly,
		SecurityOpt:     o.securityOpt.values,
		Tmpfs:           tmpfs,
		ShmSize:         o.shmSize.n,
		Sysctls:         sysctls,
		Runtime:         o.runtime,
		Mounts:          o.mounts.mounts,
		Resources: container.Resources{
			CgroupParent:      o.cgroupParent,
			Memory:            o.memory.n,
			MemorySwap:        o.memorySwap.n,
			MemoryReservation: o.memoryReservation.n,
			NanoCPUs:          int64(o.cpus),
			CPUShares:         o.cpuShares,
			CpusetCpus:        o.cpusetCpus,
			CpusetMems:        o.cpusetMems,
			Ulimits:           o.ulimits.limits,
		},
	}
	if fs.Changed("pids-limit") {
		p := o.pidsLimit
		host.PidsLimit = &p
	}
	if o.memorySwap.n > 0 && o.memory.n > 0 && o.memorySwap.n < o.memory.n {
		return nil, errors.New("minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if o.memorySwap.n != 0 && o.memory.n == 0 && fs.Changed("memory-swap") {
		return nil, errors.New("you should always set the memory limit when using memoryswap limit, see usage")
	}
	return &containerConfig{
		Config:           cfg,
		HostConfig:       host,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: endpoints},
	}, nil
}

// networking works out the network mode and endpoint settings from
// --network (repeatable: the first is the mode, the others are joined
// too) and --network-alias (only on user-defined networks).
func (o *containerOptions) networking() (container.NetworkMode, map[string]*network.EndpointSettings, error) {
	endpoints := map[string]*network.EndpointSettings{}
	nets := o.networks.values
	if len(nets) == 0 {
		if len(o.aliases.values) > 0 {
			return "", nil, errors.New("network-scoped aliases are only supported for user-defined networks")
		}
		return network.NetworkDefault, endpoints, nil
	}
	userDefined, builtin := false, false
	for i, n := range nets {
		mode := container.NetworkMode(n)
		if mode.IsUserDefined() {
			userDefined = true
		} else {
			builtin = true
		}
		if _, dup := endpoints[n]; dup {
			return "", nil, fmt.Errorf("network %q is specified multiple times", n)
		}
		ep := &network.EndpointSettings{}
		if i == 0 && len(o.aliases.values) > 0 {
			if !mode.IsUserDefined() {
				return "", nil, errors.New("network-scoped aliases are only supported for user-defined networks")
			}
			ep.Aliases = append(ep.Aliases, o.aliases.values...)
		}
		if i == 0 && len(nets) == 1 && len(ep.Aliases) == 0 {
			continue // the engine makes the endpoint itself
		}
		endpoints[n] = ep
	}
	if userDefined && builtin {
		return "", nil, errors.New("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
	}
	return container.NetworkMode(nets[0]), endpoints, nil
}
