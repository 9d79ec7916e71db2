// Package network is the home of Skiff's container networking. It holds no
// code itself; the work is done by its subpackages:
//
//   - netns: create, delete and enter network namespaces kept alive by bind
//     mounts (the engine's sandboxes, and tests' "hosts").
//   - bridge: Docker-style bridge networks — Linux bridges, veth endpoints,
//     IPAM, masquerade and published ports in Skiff's own nftables table,
//     and an embedded DNS server per user network.
//
// The container engine uses both for `docker run --network ...` and `-p`;
// the node agent reuses them for pod sandboxes.
package network
