package dockercli

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const defaultPsTable = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

var psHeaders = headerRow{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
	"RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS",
	"Size": "SIZE", "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
	"LocalVolumes": "LOCAL VOLUMES",
}

func (c *cli) newPsCmd(use string) *cobra.Command {
	var (
		all, quiet, noTrunc, latest, size bool
		last                              int
		format                            string
		filters                           = newList(checkFilter)
	)
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS]",
		Short: "List containers",
		Args:  noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			if quiet && format != "" {
				fmt.Fprintln(c.err(), "WARNING: Ignoring custom format, because both --format and --quiet are set.")
				format = ""
			}
			tableFormat := defaultPsTable
			if size {
				tableFormat += "\t{{.Size}}"
			}
			if quiet {
				tableFormat = "{{.ID}}"
			}
			f, err := newFormatter(format, tableFormat, psHeaders)
			if err != nil {
				return err
			}
			opts := client.ContainerListOptions{All: all, Limit: last, Size: size || strings.Contains(format, ".Size"), Filters: parseFilters(filters.values)}
			if latest && last == -1 {
				opts.Limit = 1
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			res, err := api.ContainerList(cmd.Context(), opts)
			if err != nil {
				return err
			}
			now := time.Now()
			rows := make([]any, len(res.Items))
			for i, s := range res.Items {
				rows[i] = containerRow{c: s, trunc: !noTrunc, now: now}
			}
			return f.write(c.out(), rows)
		}),
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only display container IDs")
	fs.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fs.BoolVarP(&latest, "latest", "l", false, "Show the latest created container (includes all states)")
	fs.IntVarP(&last, "last", "n", -1, "Show n last created containers (includes all states)")
	fs.BoolVarP(&size, "size", "s", false, "Display total file sizes")
	fs.StringVar(&format, "format", "", "Format output using a custom template ('table', 'table TEMPLATE', 'json' or a Go template)")
	fs.VarP(filters, "filter", "f", "Filter output based on conditions provided")
	return cmd
}

// checkFilter checks a --filter value: name=value.
func checkFilter(s string) (string, error) {
	if k, _, ok := strings.Cut(s, "="); !ok || k == "" {
		return "", fmt.Errorf("bad format of filter (expected name=value)")
	}
	return s, nil
}

func parseFilters(list []string) client.Filters {
	f := client.Filters{}
	for _, s := range list {
		k, v, _ := strings.Cut(s, "=")
		f.Add(strings.ToLower(k), v)
	}
	return f
}

// containerRow is one container in ps output; its methods are the
// fields templates may use.
type containerRow struct {
	c     container.Summary
	trunc bool
	now   time.Time
}

func (r containerRow) ID() string {
	if r.trunc {
		return shortID(r.c.ID)
	}
	return r.c.ID
}

// Names are the container's names without their slash; truncated output
// leaves out the legacy link names (those with a slash inside).
func (r containerRow) Names() string {
	var names []string
	for _, n := range r.c.Names {
		n = strings.TrimPrefix(n, "/")
		if r.trunc && strings.Contains(n, "/") {
			continue
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

func (r containerRow) Image() string {
	img := r.c.Image
	if img == "" {
		return "<no image>"
	}
	if !r.trunc {
		return img
	}
	if shortID(r.c.ImageID) == shortID(img) {
		return shortID(img)
	}
	if ref, err := reference.ParseNormalizedNamed(img); err == nil {
		if t, ok := ref.(reference.NamedTagged); ok {
			if nt, err := reference.WithTag(reference.TrimNamed(t), t.Tag()); err == nil {
				return reference.FamiliarString(nt)
			}
		} else {
			return reference.FamiliarString(reference.TrimNamed(ref))
		}
	}
	return img
}

func (r containerRow) Command() string {
	cmd := r.c.Command
	if r.trunc {
		cmd = ellipsis(cmd, 20)
	}
	return strconv.Quote(cmd)
}

func (r containerRow) CreatedAt() string { return time.Unix(r.c.Created, 0).String() }
func (r containerRow) RunningFor() string {
	return ago(r.now, time.Unix(r.c.Created, 0))
}
func (r containerRow) Ports() string { return displayPorts(r.c.Ports) }
func (r containerRow) State() string { return string(r.c.State) }

// Status is the engine's human status ("Up 3 seconds", "Exited (0) 5
// seconds ago"), or the state when the engine sent none.
func (r containerRow) Status() string {
	if r.c.Status != "" {
		return r.c.Status
	}
	if r.c.State == "" {
		return ""
	}
	s := string(r.c.State)
	return strings.ToUpper(s[:1]) + s[1:]
}

func (r containerRow) Size() string {
	s := units.HumanSizeWithPrecision(float64(r.c.SizeRw), 3)
	if r.c.SizeRootFs > 0 {
		s += " (virtual " + units.HumanSizeWithPrecision(float64(r.c.SizeRootFs), 3) + ")"
	}
	return s
}

func (r containerRow) Labels() string {
	l := make([]string, 0, len(r.c.Labels))
	for k, v := range r.c.Labels {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	return strings.Join(l, ",")
}

func (r containerRow) Label(name string) string { return r.c.Labels[name] }

func (r containerRow) Mounts() string {
	var names []string
	for _, m := range r.c.Mounts {
		n := m.Name
		if n == "" {
			n = m.Source
		}
		if r.trunc {
			n = ellipsis(n, 15)
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

func (r containerRow) LocalVolumes() string {
	n := 0
	for _, m := range r.c.Mounts {
		if m.Driver == "local" {
			n++
		}
	}
	return strconv.Itoa(n)
}

func (r containerRow) Networks() string {
	if r.c.NetworkSettings == nil {
		return ""
	}
	var names []string
	for n := range r.c.NetworkSettings.Networks {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// MarshalJSON is the row as --format json shows it.
func (r containerRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"ID": r.ID(), "Image": r.Image(), "Command": r.Command(), "CreatedAt": r.CreatedAt(),
		"RunningFor": r.RunningFor(), "Ports": r.Ports(), "State": r.State(), "Status": r.Status(),
		"Size": r.Size(), "Names": r.Names(), "Labels": r.Labels(), "Mounts": r.Mounts(),
		"Networks": r.Networks(), "LocalVolumes": r.LocalVolumes(),
	})
}

// displayPorts formats ports as docker ps does: consecutive ports
// grouped into ranges ("0.0.0.0:8000-8001->8000-8001/tcp, 9000/udp").
func displayPorts(ports []container.PortSummary) string {
	ports = slices.Clone(ports)
	sort.Slice(ports, func(i, j int) bool {
		a, b := ports[i], ports[j]
		if a.PrivatePort != b.PrivatePort {
			return a.PrivatePort < b.PrivatePort
		}
		if a.IP != b.IP {
			return a.IP.Less(b.IP)
		}
		if a.PublicPort != b.PublicPort {
			return a.PublicPort < b.PublicPort
		}
		return a.Type < b.Type
	})
	type group struct {
		ip         netip.Addr
		proto      string
		first, end uint16
	}
	var groups []*group
	byKey := map[string]*group{}
	var result, hostMappings []string
	for _, p := range ports {
		key := p.Type
		if p.IP.IsValid() {
			if p.PublicPort != p.PrivatePort {
				hostMappings = append(hostMappings, fmt.Sprintf("%s->%d/%s",
					netip.AddrPortFrom(p.IP, p.PublicPort).String(), p.PrivatePort, p.Type))
				continue
			}
			key = p.IP.String() + "/" + p.Type
		}
		g := byKey[key]
		if g == nil {
			g = &group{ip: p.IP, proto: p.Type, first: p.PrivatePort, end: p.PrivatePort}
			byKey[key] = g
			groups = append(groups, g)
			continue
		}
		if p.PrivatePort == g.end+1 {
			g.end = p.PrivatePort
			continue
		}
		result = append(result, formatPortGroup(g.ip, g.proto, g.first, g.end))
		g.first, g.end = p.PrivatePort, p.PrivatePort
	}
	for _, g := range groups {
		result = append(result, formatPortGroup(g.ip, g.proto, g.first, g.end))
	}
	return strings.Join(append(result, hostMappings...), ", ")
}

func formatPortGroup(ip netip.Addr, proto string, first, end uint16) string {
	s := strconv.Itoa(int(first))
	if first != end {
		s += "-" + strconv.Itoa(int(end))
	}
	if ip.IsValid() {
		host := ip.String()
		if ip.Is6() {
			host = "[" + host + "]"
		}
		s = host + ":" + s + "->" + s
	}
	return s + "/" + proto
}
