package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"skiff.dev/skiff/internal/atomicfile"
)

// stateFile is what the Manager persists in Options.StateDir: every network
// with its endpoints. It is the intent; Start makes the kernel match it.
type stateFile struct {
	Version  int        `json:"version"`
	NextPort uint16     `json:"nextPort,omitempty"`
	Networks []*network `json:"networks"`
}

const (
	stateVersion  = 1
	stateFileName = "networks.json"
)

// network is a network as persisted, plus parsed forms of its addresses.
type network struct {
	ID        string               `json:"id"`
	Name      string               `json:"name"`
	Subnet    string               `json:"subnet"`
	Gateway   string               `json:"gateway"`
	Bridge    string               `json:"bridge"`
	Internal  bool                 `json:"internal,omitempty"`
	DNS       bool                 `json:"dns,omitempty"`
	Default   bool                 `json:"default,omitempty"` // the predefined "bridge" network
	Labels    map[string]string    `json:"labels,omitempty"`
	Created   time.Time            `json:"created"`
	Endpoints map[string]*endpoint `json:"endpoints,omitempty"` // by container ID

	NoHairpinNAT bool `json:"noHairpinNAT,omitempty"` // see NetworkConfig

	prefix netip.Prefix
	gw     netip.Addr
}

// endpoint is one container's attachment to a network.
type endpoint struct {
	ContainerID string        `json:"containerID"`
	NetNS       string        `json:"netns"`
	IfName      string        `json:"ifName"`
	HostIfName  string        `json:"hostIfName"`
	IP          string        `json:"ip"`
	MAC         string        `json:"mac"`
	Names       []string      `json:"names,omitempty"`
	Ports       []PortMapping `json:"ports,omitempty"`
	Attached    time.Time     `json:"attached"`

	ip       netip.Addr
	reserved []int // sockets holding the published host ports
}

// parse fills in the parsed forms after loading.
func (n *network) parse() error {
	p, err := parseSubnet(n.Subnet)
	if err != nil {
		return fmt.Errorf("network %s: %w", n.ID, err)
	}
	gw, err := parseHostIP("gateway", n.Gateway, p)
	if err != nil {
		return fmt.Errorf("network %s: %w", n.ID, err)
	}
	n.prefix, n.gw = p, gw
	for _, ep := range n.Endpoints {
		if ep.ip, err = netip.ParseAddr(ep.IP); err != nil {
			return fmt.Errorf("network %s: endpoint %s: bad ip %q", n.ID, ep.ContainerID, ep.IP)
		}
	}
	return nil
}

// loadState reads the state file; a missing file is an empty state.
func loadState(dir string) (*stateFile, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return &stateFile{Version: stateVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load network state: %w", err)
	}
	var s stateFile
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("load network state %s: %w", filepath.Join(dir, stateFileName), err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("load network state: version %d, want %d", s.Version, stateVersion)
	}
	for _, n := range s.Networks {
		if err := n.parse(); err != nil {
			return nil, fmt.Errorf("load network state: %w", err)
		}
		if n.Endpoints == nil {
			n.Endpoints = map[string]*endpoint{}
		}
	}
	return &s, nil
}

// saveState writes the state atomically.
func saveState(dir string, nets map[string]*network, nextPort uint16) error {
	s := stateFile{Version: stateVersion, NextPort: nextPort}
	for _, id := range slices.Sorted(maps.Keys(nets)) {
		s.Networks = append(s.Networks, nets[id])
	}
	b, err := json.MarshalIndent(&s, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, stateFileName), b, 0o600); err != nil {
		return fmt.Errorf("save network state: %w", err)
	}
	return nil
}
