#!/usr/bin/env bash
# Takes a fresh Debian/Ubuntu machine (as root) to a running all-in-one
# Skiff cluster: installs what the build needs, builds bin/skiff and
# bin/skiff-shim, starts `skiff server` on embedded defaults and the
# container engine (`skiff engine`), and waits until both answer.
set -euo pipefail
cd "$(dirname "$0")/.."

need_go=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)

log() { printf '==> %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "run as root (the server manages namespaces, cgroups and mounts)" >&2
  exit 1
fi

log "installing build dependencies"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq gcc make git ca-certificates curl iproute2 libseccomp-dev >/dev/null

export PATH="/usr/local/go/bin:$PATH"
have_go=$(go env GOVERSION 2>/dev/null | sed 's/^go//' || true)
if [ -z "$have_go" ] || [ "$(printf '%s\n%s\n' "$need_go" "$have_go" | sort -V | head -1)" != "$need_go" ]; then
  log "installing Go $need_go"
  arch=$(dpkg --print-architecture)
  curl -fsSL "https://go.dev/dl/go${need_go}.linux-${arch}.tar.gz" | tar -C /usr/local -xz --overwrite
fi

log "building bin/skiff"
make build

data_dir=${SKIFF_DATA_DIR:-/var/lib/skiff}
if curl -fsk https://127.0.0.1:6443/readyz >/dev/null 2>&1; then
  log "a server already answers on :6443"
else
  log "starting skiff server (data in $data_dir, log in /var/log/skiff.log)"
  nohup ./bin/skiff server --data-dir "$data_dir" >/var/log/skiff.log 2>&1 &
  for _ in $(seq 1 100); do
    curl -fsk https://127.0.0.1:6443/readyz >/dev/null 2>&1 && break
    sleep 0.1
  done
fi
curl -fsk https://127.0.0.1:6443/readyz >/dev/null

if [ -S /run/skiff/docker.sock ] && curl -fs --unix-socket /run/skiff/docker.sock http://d/_ping >/dev/null 2>&1; then
  log "the container engine already answers on /run/skiff/docker.sock"
else
  log "starting skiff engine (Docker API on /run/skiff/docker.sock, log in /var/log/skiff-engine.log)"
  nohup ./bin/skiff engine --data-dir "$data_dir" >/var/log/skiff-engine.log 2>&1 &
  for _ in $(seq 1 100); do
    curl -fs --unix-socket /run/skiff/docker.sock http://d/_ping >/dev/null 2>&1 && break
    sleep 0.1
  done
fi
log "ready. Try:  $(pwd)/bin/kubectl get namespaces"
log "       and:  $(pwd)/bin/skiff run --rm -it IMAGE sh   (or DOCKER_HOST=unix:///run/skiff/docker.sock docker ...)"
log "admin kubeconfig: $data_dir/admin.kubeconfig"
