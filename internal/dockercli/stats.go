package dockercli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const defaultStatsTable = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

var statsHeaders = headerRow{
	"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
	"MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

func (c *cli) newStatsCmd() *cobra.Command {
	var (
		all, noStream, noTrunc bool
		format                 string
	)
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: run(func(cmd *cobra.Command, args []string) error {
			f, err := newFormatter(format, defaultStatsTable, statsHeaders)
			if err != nil {
				return err
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			_, clear := terminalFd(c.out())
			for {
				names := args
				if len(names) == 0 {
					res, err := api.ContainerList(ctx, client.ContainerListOptions{All: all})
					if err != nil {
						return err
					}
					for _, s := range res.Items {
						names = append(names, s.ID)
					}
				}
				rows, err := sampleStats(ctx, api, names, !noTrunc, len(args) > 0)
				if err != nil {
					return err
				}
				if !noStream && clear {
					fmt.Fprint(c.out(), "\033[2J\033[H")
				}
				if err := f.write(c.out(), rows); err != nil {
					return err
				}
				if noStream {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(500 * time.Millisecond):
				}
			}
		}),
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fs.BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	fs.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate output")
	fs.StringVar(&format, "format", "", "Format output using a custom template ('table', 'table TEMPLATE', 'json' or a Go template)")
	return cmd
}

// sampleStats takes one sample (with the engine's previous one, for the
// CPU figure) of every named container at once. Failures of containers
// named on the command line are errors; the others show as "--".
func sampleStats(ctx context.Context, api *client.Client, names []string, trunc, strict bool) ([]any, error) {
	rows := make([]any, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			r := statsRow{container: name, trunc: trunc, invalid: true}
			res, err := api.ContainerStats(ctx, name, client.ContainerStatsOptions{IncludePreviousSample: true})
			if err == nil {
				var s container.StatsResponse
				err = json.NewDecoder(res.Body).Decode(&s)
				res.Body.Close()
				if err == nil {
					r = newStatsRow(name, s, trunc)
				}
			}
			rows[i], errs[i] = r, err
		})
	}
	wg.Wait()
	if strict {
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
	}
	return rows, nil
}

// statsRow is one container's figures; its methods are template fields.
type statsRow struct {
	container, id, name             string
	cpu, mem, memLimit, memPerc     float64
	netRx, netTx, blkRead, blkWrite float64
	pids                            uint64
	trunc, invalid                  bool
}

func newStatsRow(name string, s container.StatsResponse, trunc bool) statsRow {
	r := statsRow{container: name, id: s.ID, name: s.Name, trunc: trunc}
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	online := float64(s.CPUStats.OnlineCPUs)
	if online == 0 {
		online = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	if sysDelta > 0 && cpuDelta > 0 {
		r.cpu = cpuDelta / sysDelta * online * 100
	}
	r.mem = float64(s.MemoryStats.Usage)
	if v, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && v < s.MemoryStats.Usage {
		r.mem = float64(s.MemoryStats.Usage - v)
	} else if v := s.MemoryStats.Stats["inactive_file"]; v < s.MemoryStats.Usage {
		r.mem = float64(s.MemoryStats.Usage - v)
	}
	r.memLimit = float64(s.MemoryStats.Limit)
	if r.memLimit != 0 {
		r.memPerc = r.mem / r.memLimit * 100
	}
	for _, n := range s.Networks {
		r.netRx += float64(n.RxBytes)
		r.netTx += float64(n.TxBytes)
	}
	for _, e := range s.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			r.blkRead += float64(e.Value)
		case "write":
			r.blkWrite += float64(e.Value)
		}
	}
	r.pids = s.PidsStats.Current
	return r
}

func (r statsRow) Container() string { return r.container }

func (r statsRow) ID() string {
	id := r.id
	if id == "" {
		id = r.container
	}
	if r.trunc {
		return shortID(id)
	}
	return id
}

func (r statsRow) Name() string {
	if n := strings.TrimPrefix(r.name, "/"); n != "" {
		return n
	}
	return "--"
}

func (r statsRow) CPUPerc() string { return r.orDash(percent(r.cpu)) }
func (r statsRow) MemPerc() string { return r.orDash(percent(r.memPerc)) }

func (r statsRow) MemUsage() string {
	if r.invalid {
		return "-- / --"
	}
	return units.BytesSize(r.mem) + " / " + units.BytesSize(r.memLimit)
}

func (r statsRow) NetIO() string {
	return r.orDash(units.HumanSizeWithPrecision(r.netRx, 3) + " / " + units.HumanSizeWithPrecision(r.netTx, 3))
}

func (r statsRow) BlockIO() string {
	return r.orDash(units.HumanSizeWithPrecision(r.blkRead, 3) + " / " + units.HumanSizeWithPrecision(r.blkWrite, 3))
}

func (r statsRow) PIDs() string { return r.orDash(strconv.FormatUint(r.pids, 10)) }

func (r statsRow) orDash(s string) string {
	if r.invalid {
		return "--"
	}
	return s
}

// MarshalJSON is the row as --format json shows it.
func (r statsRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"Container": r.Container(), "ID": r.ID(), "Name": r.Name(), "CPUPerc": r.CPUPerc(),
		"MemUsage": r.MemUsage(), "MemPerc": r.MemPerc(), "NetIO": r.NetIO(), "BlockIO": r.BlockIO(), "PIDs": r.PIDs(),
	})
}

func percent(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "%" }
