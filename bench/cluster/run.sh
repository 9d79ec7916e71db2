#!/usr/bin/env bash
# Issue 8's cluster figures, as root, inside a network namespace of its own:
#   1. `skiff server` start → Ready node with DNS answering (RUNS fresh starts)
#   2. `make demo` (examples/demo.sh) on a running cluster → all example pods Ready
#   3. whole-cluster RSS with every example running, per component
# Prints JSON lines; results go to docs/benchmarks.md by hand.
set -euo pipefail
cd "$(dirname "$0")/../.."
make build examples >/dev/null
bin=$PWD/bin
tmp=$(mktemp -d /tmp/skiff-bench-cluster.XXXXXX)
ns=$tmp/node.netns
cleanup() {
  set +e
  [ -n "${engine:-}" ] && kill "$engine" 2>/dev/null && wait "$engine" 2>/dev/null
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  pkill -KILL -f "skiff-shim shim .*$tmp" 2>/dev/null
  for m in $(awk -v d="$tmp/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m"; done
  umount "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
touch "$ns"; unshare --net="$ns" true; nsenter --net="$ns" ip link set lo up
# An uplink with a default route, as a real host has (Service addresses are
# routed out and DNATed on the way): a veth pair with both ends in the
# namespace, on the documentation range.
nsenter --net="$ns" sh -c 'ip link add up0 type veth peer name up1 && ip addr add 198.51.100.1/24 dev up0 &&
  ip link set up0 up && ip link set up1 up && ip route add default via 198.51.100.2'

go build -o "$tmp/cluster" ./bench/cluster
echo "== server start → Ready node + DNS" >&2
nsenter --net="$ns" "$tmp/cluster" -skiff "$bin/skiff" -shim "$bin/skiff-shim" -runs "${RUNS:-5}"

echo "== make demo on a running cluster" >&2
data=$tmp/data
nsenter --net="$ns" "$bin/skiff" server --data-dir "$data" --listen 127.0.0.1:6443 --registry-listen 127.0.0.1:5000 \
  --run-dir "$tmp/run" --shim "$bin/skiff-shim" --node-name node-1 --log-level warn >"$tmp/server.log" 2>&1 &
pid=$!
nsenter --net="$ns" "$bin/skiff" engine --data-dir "$data" --run-dir "$tmp/engine" --shim "$bin/skiff-shim" >"$tmp/engine.log" 2>&1 &
engine=$!
export KUBECONFIG=$data/admin.kubeconfig DOCKER_HOST=unix://$tmp/engine/docker.sock SKIFF_DATA_DIR=$data
k() { nsenter --net="$ns" "$bin/kubectl" "$@"; }
for _ in $(seq 1 300); do
  [ "$(k get node node-1 -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ] && break
  sleep 0.1
done
start=$(date +%s.%N)
nsenter --net="$ns" env PATH="$bin:$PATH" examples/demo.sh >"$tmp/demo.log" 2>&1 || { cat "$tmp/demo.log" >&2; exit 1; }
end=$(date +%s.%N)
pods=$(k get pods -A --no-headers | wc -l)
echo "{\"make_demo_s\": $(echo "$end - $start" | bc), \"pods\": $pods}"

echo "== whole-cluster RSS with the examples running (after 20 s)" >&2
sleep 20
rss() { awk '/VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
shims=0; nshim=0
for p in $(pgrep -f "skiff-shim shim .*$tmp/run"); do shims=$((shims + $(rss "$p"))); nshim=$((nshim + 1)); done
apps=0
for p in $(pgrep -f "skiff-shim shim .*$tmp/run"); do for c in $(pgrep -P "$p"); do apps=$((apps + $(rss "$c"))); done; done
echo "{\"server_mib\": $(( $(rss $pid) / 1024 )), \"engine_mib\": $(( $(rss $engine) / 1024 )), \"shims\": $nshim, \"shims_mib\": $((shims / 1024)), \"containers_mib\": $((apps / 1024))}"
