#!/usr/bin/env bash
# Runs Skiff's control-plane benchmarks and prints one JSON line each:
#   coldstart  exec → /readyz, fresh and existing data dir; idle RSS
#   apiload    the upstream-comparison load tool from ../shared/bench/apiload
#              (5,000 ConfigMap creates from 16 workers, list, 200 watchers)
# Results and conditions go to docs/benchmarks.md by hand, beside ANCHORS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${SHARED:-../shared}
out=${OUT:-/tmp/skiff-bench}
mkdir -p "$out"

make build >/dev/null
go build -o "$out/coldstart" ./bench/coldstart
(cd "$shared/bench/apiload" && go build -o "$out/apiload" . )

echo "== coldstart" >&2
"$out/coldstart" -skiff bin/skiff -runs "${RUNS:-10}"

echo "== apiload" >&2
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bin/skiff server --data-dir "$dir" --listen "127.0.0.1:$port" --registry-listen= --disable-agent --log-level warn >"$out/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 200); do curl -fsk "https://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
"$out/apiload" -kubeconfig "$dir/admin.kubeconfig" -label skiff
echo "server RSS after load: $(awk '/VmRSS/{print $2/1024 " MiB"}' /proc/$pid/status)" >&2
