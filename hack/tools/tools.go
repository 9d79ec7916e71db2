//go:build tools

package tools

import (
	_ "github.com/google/nftables"
	_ "github.com/miekg/dns"
	_ "github.com/moby/moby/api/types/container"
	_ "github.com/moby/moby/api/pkg/stdcopy"
	_ "github.com/moby/moby/client"
	_ "github.com/moby/profiles/seccomp"
	_ "github.com/opencontainers/cgroups"
	_ "github.com/opencontainers/cgroups/devices"
	_ "github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/specconv"
	_ "github.com/opencontainers/runtime-spec/specs-go"
	_ "github.com/vishvananda/netlink"
	_ "github.com/vishvananda/netns"
	_ "golang.org/x/term"
)
