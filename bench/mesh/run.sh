#!/usr/bin/env bash
# Mesh data-plane benchmark (issue 9): what a sidecar pair adds to a
# request, client → outbound proxy → inbound proxy → server against client
# → server directly, at 1,000 rps, 16 connections, 1 KB answers; each
# proxy's CPU (/proc/PID/stat over the run) and memory (VmRSS and Pss from
# /proc/PID/smaps_rollup, idle and under load); the same client → proxy →
# server path through one Skiff proxy, nginx and haproxy for reference.
# The backend and load generator are bench/ingress's. Everything runs in a
# network namespace of its own:
#
#   direct, pair, pair+telemetry, skiff, nginx, haproxy: on loopback (the
#       pair's proxies on explicit ports, plain listeners, no mTLS);
#   mesh-direct, mesh, mesh-notelemetry, sidecar: between two pods (two
#       namespaces joined by a veth pair) with the sidecar's nftables
#       capture (REDIRECT to 15001/15006, proxies as uid 1337) and mesh
#       mTLS from a throwaway CA; mesh* run bench/mesh/pairproxy with the
#       sidecar documents, sidecar runs the real skiff-proxy binary fed by
#       a fake node over its unix socket (when cmd/skiff-proxy exists).
#
#   bench/mesh/run.sh     RUNS=3 DURATION=20s WARMUP=3s CONNS=16 SIZE=1024
#                         TARGETS=direct,pair,... MTLS=false JSON=file
#                         PROFILE=dir (CPU profiles of the pairproxy processes)
#                         PROXY_ENV=GOMAXPROCS=1,GOGC=200 (Skiff's proxies only)
# About 15 minutes with the defaults. Results go to docs/benchmarks.md
# ("Mesh") by hand.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" = 0 ] && [ -z "${SKIFF_BENCH_NETNS:-}" ]; then
  exec env SKIFF_BENCH_NETNS=1 unshare --net -- "$0" "$@"
fi
[ -n "${SKIFF_BENCH_NETNS:-}" ] && ip link set lo up
for tool in nginx haproxy; do
  command -v $tool >/dev/null || { echo "missing $tool: apt-get install nginx haproxy" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/skiff-bench-mesh.XXXXXX)
chmod 755 "$tmp" # the proxies run as the sidecar's uid 1337
trap 'rm -rf "$tmp"' EXIT
targets=${TARGETS:-direct,pair,pair+telemetry,skiff,nginx,haproxy,mesh-direct,mesh,mesh-notelemetry}
go build -o "$tmp/backend" ./bench/ingress/backend
go build -o "$tmp/loadgen" ./bench/ingress/loadgen
go build -o "$tmp/pairproxy" ./bench/mesh/pairproxy
go build -o "$tmp/mesh" ./bench/mesh
if [ -d cmd/skiff-proxy ]; then
  go build -o "$tmp/skiff-proxy" ./cmd/skiff-proxy
  [ -n "${TARGETS:-}" ] || targets=$targets,sidecar
fi
"$tmp/mesh" -bin "$tmp" -tmp "$tmp" -runs "${RUNS:-3}" -duration "${DURATION:-20s}" -warmup "${WARMUP:-3s}" \
  -conns "${CONNS:-16}" -size "${SIZE:-1024}" -rate "${RATE:-1000}" \
  -targets "$targets" -mtls="${MTLS:-true}" ${JSON:+-json "$JSON"} \
  ${PROFILE:+-cpuprofile-dir "$PROFILE"} ${PROXY_ENV:+-proxy-env "$PROXY_ENV"}
