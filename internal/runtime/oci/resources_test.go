package oci

import (
	"errors"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/internal/errdefs"
)

func ptr[T any](v T) *T { return &v }

func TestResources(t *testing.T) {
	rootfs := testRootfs(t)
	const mib = 1 << 20
	tests := []struct {
		name     string
		r        Resources
		noSwap   bool // the host cannot limit swap
		wantErr  bool
		wantMem  *specs.LinuxMemory
		wantCPU  *specs.LinuxCPU
		wantPids *specs.LinuxPids
	}{
		{name: "none"},
		{name: "memory: swap defaults to none", r: Resources{MemoryBytes: 64 * mib},
			wantMem: &specs.LinuxMemory{Limit: ptr[int64](64 * mib), Swap: ptr[int64](64 * mib)}},
		{name: "memory: unlimited swap", r: Resources{MemoryBytes: 64 * mib, MemorySwapBytes: -1},
			wantMem: &specs.LinuxMemory{Limit: ptr[int64](64 * mib)}},
		{name: "memory: some swap", r: Resources{MemoryBytes: 64 * mib, MemorySwapBytes: 128 * mib},
			wantMem: &specs.LinuxMemory{Limit: ptr[int64](64 * mib), Swap: ptr[int64](128 * mib)}},
		{name: "memory: host without swap accounting", r: Resources{MemoryBytes: 64 * mib, MemorySwapBytes: 128 * mib}, noSwap: true,
			wantMem: &specs.LinuxMemory{Limit: ptr[int64](64 * mib)}},
		{name: "memory below 6MiB", r: Resources{MemoryBytes: 5 * mib}, wantErr: true},
		{name: "negative memory", r: Resources{MemoryBytes: -1}, wantErr: true},
		{name: "swap without memory", r: Resources{MemorySwapBytes: 64 * mib}, wantErr: true},
		{name: "swap below memory", r: Resources{MemoryBytes: 64 * mib, MemorySwapBytes: 32 * mib}, wantErr: true},
		{name: "swap -2", r: Resources{MemoryBytes: 64 * mib, MemorySwapBytes: -2}, wantErr: true},
		{name: "cpu: shares, quota, period, cpuset",
			r:       Resources{CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000, CpusetCpus: "0-1,3", CpusetMems: "0"},
			wantCPU: &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000), Cpus: "0-1,3", Mems: "0"}},
		{name: "cpu: --cpus=1.5", r: Resources{NanoCPUs: 1_500_000_000},
			wantCPU: &specs.LinuxCPU{Quota: ptr[int64](150000), Period: ptr[uint64](100000)}},
		{name: "cpu: unlimited quota", r: Resources{CPUQuota: -1}, wantCPU: &specs.LinuxCPU{Quota: ptr[int64](-1)}},
		{name: "cpus with quota", r: Resources{NanoCPUs: 1e9, CPUQuota: 50000}, wantErr: true},
		{name: "cpus with period", r: Resources{NanoCPUs: 1e9, CPUPeriod: 50000}, wantErr: true},
		{name: "more cpus than the host", r: Resources{NanoCPUs: 5e9}, wantErr: true},
		{name: "cpus below 0.01", r: Resources{NanoCPUs: 1e6}, wantErr: true},
		{name: "period too short", r: Resources{CPUPeriod: 999}, wantErr: true},
		{name: "period too long", r: Resources{CPUPeriod: 1_000_001}, wantErr: true},
		{name: "quota too small", r: Resources{CPUQuota: 999}, wantErr: true},
		{name: "quota -2", r: Resources{CPUQuota: -2}, wantErr: true},
		{name: "cpuset descending", r: Resources{CpusetCpus: "3-1"}, wantErr: true},
		{name: "cpuset garbage", r: Resources{CpusetMems: "all"}, wantErr: true},
		{name: "cpuset trailing comma", r: Resources{CpusetCpus: "1,"}, wantErr: true},
		{name: "pids limit", r: Resources{PidsLimit: 100}, wantPids: &specs.LinuxPids{Limit: ptr[int64](100)}},
		{name: "pids unlimited", r: Resources{PidsLimit: -5}, wantPids: &specs.LinuxPids{Limit: ptr[int64](-1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig(rootfs)
			c.Resources = tt.r
			h := testHost()
			h.swapLimit = !tt.noSwap
			s, err := buildSpec(c, h)
			if tt.wantErr {
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("buildSpec = %v; want errdefs.ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("buildSpec: %v", err)
			}
			equal(t, "memory", tt.wantMem, s.Linux.Resources.Memory)
			equal(t, "cpu", tt.wantCPU, s.Linux.Resources.CPU)
			equal(t, "pids", tt.wantPids, s.Linux.Resources.Pids)
			equal(t, "devices", defaultDeviceRules(), s.Linux.Resources.Devices)
		})
	}
}

func TestNanoCPUs(t *testing.T) {
	tests := []struct {
		name   string
		n      int64
		quota  int64
		period uint64
	}{
		{name: "one", n: 1e9, quota: 100000, period: 100000},
		{name: "half", n: 5e8, quota: 50000, period: 100000},
		{name: "hundredth", n: 1e7, quota: 1000, period: 100000},
		{name: "two and a quarter", n: 2_250_000_000, quota: 225000, period: 100000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, p := NanoCPUs(tt.n)
			if q != tt.quota || p != tt.period {
				t.Errorf("NanoCPUs(%d) = %d, %d; want %d, %d", tt.n, q, p, tt.quota, tt.period)
			}
		})
	}
}
