package dockercli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func (c *cli) newNetworkCmd() *cobra.Command {
	return newGroupCmd("network", "Manage networks",
		c.newNetworkCreateCmd(), c.newNetworkLsCmd(), c.newNetworkRmCmd(), c.newInspectCmd("network"),
		c.newNetworkConnectCmd(), c.newNetworkDisconnectCmd(), c.newNetworkPruneCmd())
}

// ParseIPAM builds a network's IPAM configuration from --subnet,
// --gateway and --ip-range: every gateway and range must fall in exactly
// one of the subnets, and a subnet has at most one gateway.
func ParseIPAM(subnets, gateways, ipRanges []string) ([]network.IPAMConfig, error) {
	if len(subnets) < len(ipRanges) || len(subnets) < len(gateways) {
		return nil, errors.New("every ip-range or gateway must have a corresponding subnet")
	}
	var cfgs []network.IPAMConfig
	for _, s := range subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("invalid subnet %s: %w", s, err)
		}
		if p.Masked() != p {
			return nil, fmt.Errorf("invalid subnet %s: it should be %s", s, p.Masked())
		}
		for _, c := range cfgs {
			if c.Subnet.Overlaps(p) {
				return nil, errors.New("multiple overlapping subnet configuration is not supported")
			}
		}
		cfgs = append(cfgs, network.IPAMConfig{Subnet: p})
	}
	for _, r := range ipRanges {
		p, err := netip.ParsePrefix(r)
		if err != nil {
			return nil, fmt.Errorf("invalid ip-range %s: %w", r, err)
		}
		i := subnetOf(cfgs, p.Addr())
		if i < 0 {
			return nil, fmt.Errorf("no matching subnet for range %s", r)
		}
		if cfgs[i].IPRange.IsValid() {
			return nil, fmt.Errorf("cannot configure multiple ranges (%s, %s) on the same subnet (%s)", r, cfgs[i].IPRange, cfgs[i].Subnet)
		}
		cfgs[i].IPRange = p
	}
	for _, g := range gateways {
		a, err := netip.ParseAddr(g)
		if err != nil {
			return nil, fmt.Errorf("invalid gateway %s: %w", g, err)
		}
		i := subnetOf(cfgs, a)
		if i < 0 {
			return nil, fmt.Errorf("no matching subnet for gateway %s", g)
		}
		if cfgs[i].Gateway.IsValid() {
			return nil, fmt.Errorf("cannot configure multiple gateways (%s, %s) for the same subnet (%s)", g, cfgs[i].Gateway, cfgs[i].Subnet)
		}
		cfgs[i].Gateway = a
	}
	return cfgs, nil
}

func subnetOf(cfgs []network.IPAMConfig, a netip.Addr) int {
	for i, c := range cfgs {
		if c.Subnet.Contains(a) {
			return i
		}
	}
	return -1
}

func (c *cli) newNetworkCreateCmd() *cobra.Command {
	var (
		driver                      string
		internal, attachable, ipv6  bool
		subnets, gateways, ipRanges []string
		labels                      = newList(ParseLabel)
		driverOpts                  = newList(nil)
	)
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  exactArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			ipam, err := ParseIPAM(subnets, gateways, ipRanges)
			if err != nil {
				return err
			}
			opts := client.NetworkCreateOptions{
				Driver: driver, Internal: internal, Attachable: attachable,
				Labels: ParseLabels(labels.values), Options: ParseLabels(driverOpts.values),
			}
			if cmd.Flags().Changed("ipv6") {
				opts.EnableIPv6 = &ipv6
			}
			if len(ipam) > 0 {
				opts.IPAM = &network.IPAM{Driver: "default", Config: ipam}
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			res, err := api.NetworkCreate(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			for _, w := range res.Warning {
				fmt.Fprintln(c.err(), "WARNING:", w)
			}
			fmt.Fprintln(c.out(), res.ID)
			return nil
		}),
	}
	fs := cmd.Flags()
	fs.StringVarP(&driver, "driver", "d", "bridge", "Driver to manage the Network")
	fs.BoolVar(&internal, "internal", false, "Restrict external access to the network")
	fs.BoolVar(&attachable, "attachable", false, "Enable manual container attachment")
	fs.BoolVar(&ipv6, "ipv6", false, "Enable or disable IPv6 address assignment")
	fs.StringSliceVar(&subnets, "subnet", nil, "Subnet in CIDR format that represents a network segment")
	fs.StringSliceVar(&gateways, "gateway", nil, "IPv4 or IPv6 Gateway for the master subnet")
	fs.StringSliceVar(&ipRanges, "ip-range", nil, "Allocate container ip from a sub-range")
	fs.Var(labels, "label", "Set metadata on a network")
	fs.VarP(driverOpts, "opt", "o", "Set driver specific options")
	return cmd
}

const defaultNetworkTable = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"

var networkHeaders = headerRow{
	"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4",
	"IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
}

func (c *cli) newNetworkLsCmd() *cobra.Command {
	var (
		quiet, noTrunc bool
		format         string
	)
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    noArgs,
	}
	filters := filterFlag(cmd, "f", "driver=bridge")
	cmd.RunE = run(func(cmd *cobra.Command, _ []string) error {
		table := defaultNetworkTable
		if quiet {
			table, format = "{{.ID}}", ""
		}
		f, err := newFormatter(format, table, networkHeaders)
		if err != nil {
			return err
		}
		api, err := c.client()
		if err != nil {
			return err
		}
		res, err := api.NetworkList(cmd.Context(), client.NetworkListOptions{Filters: parseFilters(filters.values)})
		if err != nil {
			return err
		}
		sort.Slice(res.Items, func(i, j int) bool { return res.Items[i].Name < res.Items[j].Name })
		rows := make([]any, len(res.Items))
		for i, n := range res.Items {
			rows[i] = networkRow{n: n.Network, trunc: !noTrunc}
		}
		return f.write(c.out(), rows)
	})
	fs := cmd.Flags()
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	fs.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	fs.StringVar(&format, "format", "", "Format output using a custom template ('table', 'table TEMPLATE', 'json' or a Go template)")
	return cmd
}

// networkRow is one network in `network ls`.
type networkRow struct {
	n     network.Network
	trunc bool
}

func (r networkRow) ID() string {
	if r.trunc {
		return shortID(r.n.ID)
	}
	return r.n.ID
}
func (r networkRow) Name() string      { return r.n.Name }
func (r networkRow) Driver() string    { return r.n.Driver }
func (r networkRow) Scope() string     { return r.n.Scope }
func (r networkRow) IPv4() string      { return strconv.FormatBool(r.n.EnableIPv4) }
func (r networkRow) IPv6() string      { return strconv.FormatBool(r.n.EnableIPv6) }
func (r networkRow) Internal() string  { return strconv.FormatBool(r.n.Internal) }
func (r networkRow) CreatedAt() string { return r.n.Created.String() }
func (r networkRow) Labels() string {
	l := make([]string, 0, len(r.n.Labels))
	for k, v := range r.n.Labels {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	return strings.Join(l, ",")
}
func (r networkRow) Label(name string) string { return r.n.Labels[name] }

func (r networkRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"ID": r.ID(), "Name": r.Name(), "Driver": r.Driver(), "Scope": r.Scope(), "IPv4": r.IPv4(),
		"IPv6": r.IPv6(), "Internal": r.Internal(), "Labels": r.Labels(), "CreatedAt": r.CreatedAt(),
	})
}

func (c *cli) newNetworkRmCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    requiresMinArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			failed := false
			for _, name := range args {
				if _, err := api.NetworkRemove(cmd.Context(), name, client.NetworkRemoveOptions{}); err != nil {
					if force && cerrdefs.IsNotFound(err) {
						continue
					}
					fmt.Fprintln(c.err(), err)
					failed = true
					continue
				}
				fmt.Fprintln(c.out(), name)
			}
			if failed {
				return StatusError{Status: "exit status 1", StatusCode: exitGeneric}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not error if the network does not exist")
	return cmd
}

func (c *cli) newNetworkConnectCmd() *cobra.Command {
	var (
		ip, ip6 string
		aliases []string
	)
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  exactArgs(2),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			ep := &network.EndpointSettings{Aliases: aliases}
			if ip != "" || ip6 != "" {
				ep.IPAMConfig = &network.EndpointIPAMConfig{}
				for _, a := range []struct {
					s   string
					dst *netip.Addr
				}{{ip, &ep.IPAMConfig.IPv4Address}, {ip6, &ep.IPAMConfig.IPv6Address}} {
					if a.s == "" {
						continue
					}
					addr, err := netip.ParseAddr(a.s)
					if err != nil {
						return invalidInput(cmd, fmt.Errorf("invalid IP address %q", a.s))
					}
					*a.dst = addr
				}
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			_, err = api.NetworkConnect(cmd.Context(), args[0], client.NetworkConnectOptions{Container: args[1], EndpointConfig: ep})
			return err
		}),
	}
	fs := cmd.Flags()
	fs.StringVar(&ip, "ip", "", `IPv4 address (e.g., "172.30.100.104")`)
	fs.StringVar(&ip6, "ip6", "", `IPv6 address (e.g., "2001:db8::33")`)
	fs.StringSliceVar(&aliases, "alias", nil, "Add network-scoped alias for the container")
	return cmd
}

func (c *cli) newNetworkDisconnectCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  exactArgs(2),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			_, err = api.NetworkDisconnect(cmd.Context(), args[0], client.NetworkDisconnectOptions{Container: args[1], Force: force})
			return err
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}

func (c *cli) newNetworkPruneCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  noArgs,
	}
	filters := filterFlag(cmd, "", "until=<timestamp>")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.RunE = run(func(cmd *cobra.Command, _ []string) error {
		if !force && !c.confirm("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?") {
			return nil // declined: nothing to say (as docker)
		}
		api, err := c.client()
		if err != nil {
			return err
		}
		res, err := api.NetworkPrune(cmd.Context(), client.NetworkPruneOptions{Filters: parseFilters(filters.values)})
		if err != nil {
			return err
		}
		c.pruneResult("Networks", res.Report.NetworksDeleted, 0, false)
		return nil
	})
	return cmd
}
