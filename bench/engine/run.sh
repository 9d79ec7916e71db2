#!/usr/bin/env bash
# Container engine benchmarks, side by side with the anchors on this machine.
# Prints hyperfine tables and memory figures; results go to docs/benchmarks.md
# by hand. Needs root, hyperfine, and (for the anchors) podman, crun, runc.
#
#   bench/engine/run.sh            RUNS=30 N_MANY=200 to change sizes
#
# Everything runs in a network namespace of its own (the engine's bridges and
# nftables rules never touch the host); state lives in a temp dir removed at exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${RUNS:-30}
many=${N_MANY:-200}
make build >/dev/null
bin=$PWD/bin
tmp=$(mktemp -d /tmp/skiff-bench-engine.XXXXXX)
ns=$tmp/node.netns
sock=$tmp/run/docker.sock
export DOCKER_HOST=unix://$sock DOCKER_CONFIG=$tmp/docker-config

cleanup() {
  set +e
  if [ -S "$sock" ]; then
    ids=$("$bin/skiff" ps -aq 2>/dev/null)
    [ -n "$ids" ] && "$bin/skiff" rm -f $ids >/dev/null 2>&1
  fi
  [ -n "${engine_pid:-}" ] && kill "$engine_pid" 2>/dev/null && wait "$engine_pid" 2>/dev/null
  pkill -KILL -f "skiff-shim shim .*$tmp" 2>/dev/null
  umount "$ns" 2>/dev/null
  for m in $(awk -v d="$tmp/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m"; done
  rm -rf "$tmp"
  podman rmi -f skiff-bench-bb >/dev/null 2>&1
}
trap cleanup EXIT

# The node's network namespace, bind-mounted so the engine and clients share it.
touch "$ns"
unshare --net="$ns" true
nsenter --net="$ns" ip link set lo up

nsenter --net="$ns" "$bin/skiff" engine --data-dir "$tmp/data" --run-dir "$tmp/run" --log-level warn >"$tmp/engine.log" 2>&1 &
engine_pid=$!
for _ in $(seq 1 300); do [ -S "$sock" ] && "$bin/skiff" info >/dev/null 2>&1 && break; sleep 0.01; done

# A busybox image from Debian's busybox-static, FROM scratch.
ctx=$tmp/ctx; mkdir -p "$ctx/rootfs/bin"
cp /usr/bin/busybox "$ctx/rootfs/bin/busybox"
for a in sh true echo sleep cat; do ln -s busybox "$ctx/rootfs/bin/$a"; done
tar -C "$ctx/rootfs" -cf "$ctx/rootfs.tar" .
printf 'FROM scratch\nADD rootfs.tar /\n' >"$ctx/Dockerfile"
"$bin/skiff" build -q -t bb "$ctx" >/dev/null

echo "== engine idle (after start and one build)"
sleep 2
awk '/^(Rss|Pss|Pss_Anon|Pss_File):/ {printf "engine %s %.1f MiB\n", $1, $2/1024}' /proc/$engine_pid/smaps_rollup

echo "== run --rm --network=none bb /bin/true"
# Anchors on the same image. On this hybrid cgroup host podman needs its
# rlimits lowered and runc (crun refuses hybrid mode without a hugetlb v1
# mount, which this script does not make); ANCHORS.md has the crun figure.
anchors=()
if command -v podman >/dev/null && podman import -q "$ctx/rootfs.tar" skiff-bench-bb >/dev/null 2>&1; then
  # podman may fail under hyperfine on hybrid-cgroup hosts (-i hides it): check its exit by hand.
  anchors+=("podman --runtime runc run --rm --network=none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 skiff-bench-bb /bin/true")
fi
if command -v runc >/dev/null; then
  b=$tmp/bundle-runc; mkdir -p "$b/rootfs"; tar -C "$b/rootfs" -xf "$ctx/rootfs.tar"
  (cd "$b" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"\/bin\/true"/' config.json)
  anchors+=("cd $b && runc run bench-\$RANDOM")
fi
hyperfine -N --warmup 3 --runs "$runs" --export-markdown "$tmp/none.md" \
  "$bin/skiff run --rm --network=none bb /bin/true" \
  "docker run --rm --network=none bb /bin/true" >/dev/null 2>&1 || true
[ ${#anchors[@]} -gt 0 ] && { hyperfine -i --warmup 3 --runs "$runs" --export-markdown "$tmp/anchors.md" "${anchors[@]}" >/dev/null 2>&1 || true; }
cat "$tmp/none.md" "$tmp/anchors.md" 2>/dev/null

echo "== run --rm bb /bin/true (default bridge)"
hyperfine -N --warmup 3 --runs "$runs" --export-markdown "$tmp/bridge.md" \
  "$bin/skiff run --rm bb /bin/true" \
  "docker run --rm bb /bin/true" >/dev/null 2>&1 || true
cat "$tmp/bridge.md"

echo "== build: FROM bb; COPY file /; RUN echo hi > /x"
bctx=$tmp/bctx; mkdir -p "$bctx"; echo data >"$bctx/file"
printf 'FROM bb\nCOPY file /\nRUN echo hi > /x\n' >"$bctx/Dockerfile"
printf 'FROM skiff-bench-bb\nCOPY file /\nRUN echo hi > /x\n' >"$bctx/Dockerfile.podman"
builds=("$bin/skiff build -q --no-cache -t b1 $bctx" "docker build -q --no-cache -t b1 $bctx" "$bin/skiff build -q -t b1 $bctx")
if podman image exists skiff-bench-bb 2>/dev/null; then
  builds+=("podman build -q --no-cache --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 -f $bctx/Dockerfile.podman -t b1 $bctx"
           "podman build -q --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 -f $bctx/Dockerfile.podman -t b1 $bctx")
fi
hyperfine -N --warmup 2 --runs "$runs" --export-markdown "$tmp/build.md" "${builds[@]}" >/dev/null 2>&1 || true
cat "$tmp/build.md"

echo "== one running container: its shim"
"$bin/skiff" run -d --name idle --network=none bb sleep 3600 >/dev/null
sleep 2
shim=$(pgrep -f "skiff-shim shim --id $("$bin/skiff" inspect -f '{{.Id}}' idle)")
awk '/^(Rss|Pss|Pss_Anon):/ {printf "shim %s %.1f MiB\n", $1, $2/1024}' /proc/$shim/smaps_rollup
"$bin/skiff" rm -f idle >/dev/null

echo "== $many containers running at once (--network=none, sleep)"
start=$(date +%s.%N)
for i in $(seq 1 "$many"); do "$bin/skiff" run -d --network=none bb sleep 3600 >/dev/null; done
end=$(date +%s.%N)
echo "started $many in $(echo "$end - $start" | bc) s"
sleep 2
awk '/^(Rss|Pss):/ {printf "engine %s %.1f MiB\n", $1, $2/1024}' /proc/$engine_pid/smaps_rollup
pss=0; rss=0
for p in $(pgrep -f "skiff-shim shim .*$tmp"); do
  read -r r s < <(awk '/^Rss:/ {r=$2} /^Pss:/ {s=$2} END {print r, s}' /proc/$p/smaps_rollup)
  rss=$((rss + r)); pss=$((pss + s))
done
echo "all shims: RSS $((rss / 1024)) MiB, PSS $((pss / 1024)) MiB"
hyperfine -N --warmup 2 --runs 10 "$bin/skiff ps" "docker ps" 2>/dev/null | grep -E "Time|skiff ps|docker ps" || true
