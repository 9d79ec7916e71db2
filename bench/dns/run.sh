#!/usr/bin/env bash
# Cluster DNS benchmark: queries/s from one client and latency percentiles
# for Skiff's server (internal/network/dns, fed with $SERVICES Services),
# then for CoreDNS answering the same names from a zone file (file plugin),
# when a coredns binary is found ($COREDNS, or $PATH; install one with
#   GOBIN=/tmp/coredns-bin go install github.com/coredns/coredns@latest).
# Prints one JSON line per server. Results go to docs/benchmarks.md by hand.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/skiff-bench/dns}
services=${SERVICES:-1000}
duration=${DURATION:-10s}
workers=${WORKERS:-16}
mkdir -p "$out"
go build -o "$out/dnsbench" ./bench/dns

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done' EXIT

wait_ready() { # addr
	for _ in $(seq 1 100); do
		if "$out/dnsbench" load -server "$1" -services 1 -workers 1 -warmup 0 -duration 50ms 2>/dev/null | grep -q '"queries":[1-9]'; then
			return 0
		fi
		sleep 0.1
	done
	echo "server on $1 did not answer" >&2
	return 1
}

echo "== skiff ($services services)" >&2
"$out/dnsbench" serve -services "$services" -listen 127.0.0.1:5300 2>"$out/skiff.log" &
pids+=($!)
wait_ready 127.0.0.1:5300
"$out/dnsbench" load -server 127.0.0.1:5300 -services "$services" -workers "$workers" -duration "$duration" -label skiff
echo "skiff server RSS: $(awk '/VmRSS/{print $2/1024 " MiB"}' /proc/${pids[0]}/status)" >&2

coredns=${COREDNS:-$(command -v coredns || true)}
if [[ -z "$coredns" ]]; then
	echo "no coredns binary: CoreDNS not measured" >&2
	exit 0
fi
echo "== coredns file zone ($services names)" >&2
"$out/dnsbench" zone -services "$services" -dir "$out" -listen 127.0.0.1:5301
"$coredns" -conf "$out/Corefile" -quiet >"$out/coredns.log" 2>&1 &
pids+=($!)
wait_ready 127.0.0.1:5301
"$out/dnsbench" load -server 127.0.0.1:5301 -services "$services" -workers "$workers" -duration "$duration" -label coredns-file
echo "coredns RSS: $(awk '/VmRSS/{print $2/1024 " MiB"}' /proc/${pids[1]}/status)" >&2
