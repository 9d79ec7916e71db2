#!/usr/bin/env bash
# Ingress benchmark: requests/s and added latency of Skiff's L7 proxy
# (internal/mesh/proxy, configured as the Ingress controller configures it
# for a Prefix path) beside nginx and haproxy (Debian packages: apt-get
# install wrk nginx haproxy), each configured for the same route to the
# same Go backend on loopback, all in a network namespace of its own.
#
#   1,000 rps:   bench/ingress/loadgen, open loop, 16 connections (Debian's
#                wrk has no fixed rate); added latency = p50/p99 through
#                the proxy minus p50/p99 to the backend directly; proxy CPU
#                (vCPU used at 1,000 rps) and RSS.
#   saturation:  wrk -t2 -c64 --latency (requests/s, p50/p99).
#
#   bench/ingress/run.sh   DURATION=20 CONNS=16 SIZE=1024 to change; ACCESS_LOG=1
#                          gives Skiff an access log (to /dev/null)
# Results go to docs/benchmarks.md by hand.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" = 0 ] && [ -z "${SKIFF_BENCH_NETNS:-}" ]; then
  exec env SKIFF_BENCH_NETNS=1 unshare --net -- "$0" "$@"
fi
[ -n "${SKIFF_BENCH_NETNS:-}" ] && ip link set lo up
for tool in wrk nginx haproxy; do
  command -v $tool >/dev/null || { echo "missing $tool: apt-get install wrk nginx haproxy" >&2; exit 1; }
done
dur=${DURATION:-20}
conns=${CONNS:-16}
size=${SIZE:-1024}
tmp=$(mktemp -d /tmp/skiff-bench-ingress.XXXXXX)
pids=()
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

for cmd in backend skiffproxy loadgen; do go build -o "$tmp/$cmd" ./bench/ingress/$cmd; done

BACKEND=127.0.0.1:18080 SKIFF=127.0.0.1:18081 NGINX=127.0.0.1:18082 HAPROXY=127.0.0.1:18083
"$tmp/backend" -listen $BACKEND -size "$size" & pids+=($!)
"$tmp/skiffproxy" -listen $SKIFF -upstream $BACKEND ${ACCESS_LOG:+-access-log} & pids+=($!); skiff_pid=$!

mkdir -p "$tmp/nginx"
cat >"$tmp/nginx.conf" <<CONF
worker_processes auto;
pid $tmp/nginx.pid;
error_log $tmp/nginx/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  upstream ui { server $BACKEND; keepalive 320; keepalive_requests 10000; }
  server {
    listen $NGINX backlog=4096;
    location /ui {
      proxy_pass http://ui;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Request-ID \$request_id;
    }
  }
}
CONF
nginx -c "$tmp/nginx.conf" & pids+=($!); nginx_pid=$!

cat >"$tmp/haproxy.cfg" <<CONF
global
  nbthread $(nproc)
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option forwardfor
  http-reuse always
frontend fe
  bind $HAPROXY
  http-request set-header X-Forwarded-Proto http
  use_backend ui if { path /ui } || { path_beg /ui/ }
backend ui
  server s1 $BACKEND
CONF
haproxy -db -f "$tmp/haproxy.cfg" & pids+=($!); haproxy_pid=$!

for a in $BACKEND $SKIFF $NGINX $HAPROXY; do
  for _ in $(seq 1 100); do curl -fs -o /dev/null "http://$a/ui/x" && break; sleep 0.05; done
done

# procs PID: the process and its children (nginx's workers).
procs() { echo "$1 $(pgrep -P "$1" | tr '\n' ' ')"; }
ticks() { local t=0; for p in $(procs "$1"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
rss_kb() { local t=0; for p in $(procs "$1"); do t=$((t + $(awk '/VmRSS/{print $2}' "/proc/$p/status"))); done; echo $t; }
hz=$(getconf CLK_TCK)

printf '%-8s %10s %9s %9s %9s %9s %8s %8s | %10s %9s %9s\n' target "rps@1000" p50_ms p99_ms +p50_ms +p99_ms vCPU RSS_MB sat_rps sat_p50 sat_p99
declare -A base50 base99
for target in direct skiff nginx haproxy; do
  case $target in
    direct) addr=$BACKEND pid="" ;;
    skiff) addr=$SKIFF pid=$skiff_pid ;;
    nginx) addr=$NGINX pid=$nginx_pid ;;
    haproxy) addr=$HAPROXY pid=$haproxy_pid ;;
  esac
  url="http://$addr/ui/x"
  [ -n "$pid" ] && t0=$(ticks "$pid")
  line=$("$tmp/loadgen" -url "$url" -rate 1000 -conns "$conns" -duration "${dur}s" -warmup 3s -label "$target")
  echo "$line" >>"$tmp/results.jsonl"
  cpu=- rss=-
  if [ -n "$pid" ]; then
    t1=$(ticks "$pid")
    cpu=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v s=$((dur + 3)) 'BEGIN{printf "%.3f", d/hz/s}')
    rss=$(awk -v k="$(rss_kb "$pid")" 'BEGIN{printf "%.1f", k/1024}')
  fi
  rps=$(echo "$line" | sed 's/.*"rps":\([0-9.]*\).*/\1/')
  p50=$(echo "$line" | sed 's/.*"p50_ms":\([0-9.]*\).*/\1/')
  p99=$(echo "$line" | sed 's/.*"p99_ms":\([0-9.]*\).*/\1/')
  if [ $target = direct ]; then b50=$p50 b99=$p99; fi
  a50=$(awk -v a="$p50" -v b="$b50" 'BEGIN{printf "%.3f", a-b}')
  a99=$(awk -v a="$p99" -v b="$b99" 'BEGIN{printf "%.3f", a-b}')
  sat=$(wrk -t2 -c64 -d"${dur}s" --latency "$url")
  srps=$(echo "$sat" | awk '/Requests\/sec/{print $2}')
  s50=$(echo "$sat" | awk '$1=="50%"{print $2}')
  s99=$(echo "$sat" | awk '$1=="99%"{print $2}')
  printf '%-8s %10.0f %9s %9s %9s %9s %8s %8s | %10.0f %9s %9s\n' $target "$rps" "$p50" "$p99" "$a50" "$a99" "$cpu" "$rss" "$srps" "$s50" "$s99"
done
echo >&2 "(loadgen lines: $(tr '\n' ' ' <"$tmp/results.jsonl"))"
