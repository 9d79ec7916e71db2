#!/usr/bin/env bash
# Pod startup with the shared podbench tool (../shared/bench/apiload/podbench),
# against an all-in-one `skiff server` with its node, run as root inside a
# network namespace of its own. Prints podbench's lines and the server's
# memory; results go to docs/benchmarks.md by hand.
#
#   bench/node/run.sh          N=50 REPLICAS=30 to change sizes
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${SHARED:-../shared}
n=${N:-50}
replicas=${REPLICAS:-30}
make build >/dev/null
bin=$PWD/bin
tmp=$(mktemp -d /tmp/skiff-bench-node.XXXXXX)
ns=$tmp/node.netns
(cd "$shared/bench/apiload" && go build -o "$tmp/podbench" ./podbench)

cleanup() {
  set +e
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  pkill -KILL -f "skiff-shim shim .*$tmp" 2>/dev/null
  for m in $(awk -v d="$tmp/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m"; done
  umount "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
touch "$ns"; unshare --net="$ns" true; nsenter --net="$ns" ip link set lo up

# The image podbench asks for (localhost/bb:latest, pull Never).
mkdir -p "$tmp/rootfs/bin"; cp /usr/bin/busybox "$tmp/rootfs/bin/"
for a in sh sleep true; do ln -s busybox "$tmp/rootfs/bin/$a"; done
tar -C "$tmp/rootfs" -cf "$tmp/rootfs.tar" .
"$bin/skiff" import --data-dir "$tmp/data" "$tmp/rootfs.tar" localhost/bb:latest >/dev/null

nsenter --net="$ns" "$bin/skiff" server --data-dir "$tmp/data" --listen 127.0.0.1:6443 --registry-listen= \
  --run-dir "$tmp/run" --node-name bench-node --log-level warn >"$tmp/server.log" 2>&1 &
pid=$!
kc=$tmp/data/admin.kubeconfig
k() { nsenter --net="$ns" "$bin/skiff" kubectl --kubeconfig "$kc" "$@"; }
for _ in $(seq 1 300); do
  [ "$(k get node bench-node -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ] && break
  sleep 0.1
done
echo "server + node idle: $(awk '/^Rss:/ {r=$2} /^Pss_Anon:/ {a=$2} END {printf "RSS %.0f MiB, anon %.0f MiB", r/1024, a/1024}' /proc/$pid/smaps_rollup)"
for mode in serial batch; do
  nsenter --net="$ns" "$tmp/podbench" -kubeconfig "$kc" -mode $mode -n "$n"
done
nsenter --net="$ns" "$tmp/podbench" -kubeconfig "$kc" -mode deployment -n "$replicas"
echo "server + node after: $(awk '/^Rss:/ {r=$2} /^Pss_Anon:/ {a=$2} END {printf "RSS %.0f MiB, anon %.0f MiB", r/1024, a/1024}' /proc/$pid/smaps_rollup)"
