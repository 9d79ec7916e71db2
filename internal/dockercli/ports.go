package dockercli

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"
)

// PortMapping is one container port and one way it is published on the
// host. HostPort is empty when the engine picks the port; it may be a
// range ("8000-8010") when one container port is given a range to pick from.
type PortMapping struct {
	Port    network.Port
	Binding network.PortBinding
}

// ParsePorts parses -p/--publish values into the ports a container exposes
// and how they are bound on the host, as the Docker API wants them.
func ParsePorts(specs []string) (network.PortSet, network.PortMap, error) {
	exposed := network.PortSet{}
	bindings := network.PortMap{}
	for _, spec := range specs {
		mappings, err := ParsePortSpec(spec)
		if err != nil {
			return nil, nil, err
		}
		for _, m := range mappings {
			exposed[m.Port] = struct{}{}
			bindings[m.Port] = append(bindings[m.Port], m.Binding)
		}
	}
	return exposed, bindings, nil
}

// ParsePortSpec parses one -p value: [[IP:][HOST]:]CONTAINER[/PROTO], where
// HOST and CONTAINER may be ranges (8000-8010) and IP may be IPv6 in
// brackets, or the long form published=H,target=C[,protocol=P].
func ParsePortSpec(spec string) ([]PortMapping, error) {
	raw, err := standardPortNotation(spec)
	if err != nil {
		return nil, err
	}
	ip, hostPort, ctrPort := splitPortParts(raw)
	ctrPort, proto, _ := strings.Cut(ctrPort, "/")
	if ctrPort == "" {
		return nil, fmt.Errorf("no port specified: %s<empty>", spec)
	}
	proto = strings.ToLower(proto)
	if proto == "" {
		proto = "tcp"
	}
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return nil, errors.New("invalid proto: " + proto)
	}

	var addr netip.Addr
	if ip != "" {
		unbracketed := ip
		if strings.HasPrefix(ip, "[") && strings.HasSuffix(ip, "]") {
			unbracketed = ip[1 : len(ip)-1]
		}
		addr, err = netip.ParseAddr(unbracketed)
		if err != nil || addr.Zone() != "" {
			return nil, errors.New("invalid IP address: " + ip)
		}
	}

	start, end, err := parsePortRange(ctrPort)
	if err != nil || start == 0 {
		return nil, errors.New("invalid containerPort: " + ctrPort)
	}
	var hostStart, hostEnd uint16
	if hostPort != "" {
		hostStart, hostEnd, err = parsePortRange(hostPort)
		if err != nil {
			return nil, errors.New("invalid hostPort: " + hostPort)
		}
		if end-start != hostEnd-hostStart && end != start {
			return nil, fmt.Errorf("invalid ranges specified for container and host Ports: %s and %s", ctrPort, hostPort)
		}
	}

	n := int(end-start) + 1
	out := make([]PortMapping, 0, n)
	for i := range n {
		port, _ := network.PortFrom(start+uint16(i), network.IPProtocol(proto))
		hp := ""
		if hostPort != "" {
			hp = strconv.Itoa(int(hostStart) + i)
			if n == 1 && hostStart != hostEnd {
				hp += "-" + strconv.Itoa(int(hostEnd))
			}
		}
		out = append(out, PortMapping{Port: port, Binding: network.PortBinding{HostIP: addr, HostPort: hp}})
	}
	return out, nil
}

// standardPortNotation turns the long form (published=8080,target=80)
// into the short one; other values pass through.
func standardPortNotation(spec string) (string, error) {
	if !strings.Contains(spec, "=") {
		return spec, nil
	}
	params := map[string]string{"protocol": "tcp"}
	for _, param := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(param, "=")
		if !ok || k == "" {
			return "", fmt.Errorf("invalid publish opts format (should be name=value but got '%s')", param)
		}
		switch k {
		case "published", "target", "protocol", "mode":
			params[k] = v
		default:
			return "", fmt.Errorf("invalid publish opts key %q", k)
		}
	}
	if params["target"] == "" {
		return "", errors.New("missing mandatory field 'target'")
	}
	s := params["target"] + "/" + params["protocol"]
	if p := params["published"]; p != "" {
		s = p + ":" + s
	}
	return s, nil
}

// splitPortParts splits IP:HOST:CONTAINER, where the IP (IPv6 unbracketed
// included) is everything before the last two colons.
func splitPortParts(raw string) (ip, host, ctr string) {
	parts := strings.Split(raw, ":")
	switch n := len(parts); n {
	case 1:
		return "", "", parts[0]
	case 2:
		return "", parts[0], parts[1]
	default:
		return strings.Join(parts[:n-2], ":"), parts[n-2], parts[n-1]
	}
}

// parsePortRange parses "80" or "8000-8010".
func parsePortRange(s string) (start, end uint16, err error) {
	lo, hi, isRange := strings.Cut(s, "-")
	start, err = parsePortNumber(lo)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		return start, start, nil
	}
	end, err = parsePortNumber(hi)
	if err != nil {
		return 0, 0, err
	}
	if end < start {
		return 0, 0, errors.New("invalid port range: " + s)
	}
	return start, end, nil
}

func parsePortNumber(s string) (uint16, error) {
	if s == "" {
		return 0, errors.New("value is empty")
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("invalid port %q", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("invalid port %q: value out of range (0-65535)", s)
	}
	return uint16(n), nil
}
