#!/usr/bin/env bash
# A code pipeline for one example app, non-interactive, as a CI job would
# run it: test → build → tag with the git commit → push → deploy → wait for
# the rollout. Any failing step stops it with a non-zero exit.
#
#   examples/pipeline.sh [APP] [DEPLOYMENT] [NAMESPACE]
#   examples/pipeline.sh hello hello default
#
# Needs bin/skiff (make build), a running cluster (KUBECONFIG) and the
# deployment already created (kubectl apply -f examples/APP/k8s/).
set -euo pipefail
cd "$(dirname "$0")/.."
app=${1:-hello}
deployment=${2:-$app}
namespace=${3:-default}
registry=${REGISTRY:-localhost:5000}
command -v skiff >/dev/null || export PATH="$PWD/bin:$PATH"
export KUBECONFIG=${KUBECONFIG:-/var/lib/skiff/admin.kubeconfig}

step() { printf '==> %s\n' "$*"; }

commit=$(git rev-parse --short=12 HEAD)
if [ -n "$(git status --porcelain -- "examples/$app" examples/internal)" ]; then
  commit="$commit-dirty"
fi
image="$registry/$app:$commit"

step "test $app"
go test "./examples/$app/..." ./examples/internal/...

step "build $image"
CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "examples/$app/$app" "./examples/$app"
skiff build -q -t "$image" --build-arg "VERSION=$commit" "examples/$app" >/dev/null

step "push $image"
skiff push "$image" >/dev/null

step "deploy to deployment/$deployment in $namespace"
kubectl -n "$namespace" set image "deployment/$deployment" "$app=$image"
kubectl -n "$namespace" annotate --overwrite "deployment/$deployment" "kubernetes.io/change-cause=pipeline: $app at $commit"
kubectl -n "$namespace" rollout status "deployment/$deployment" --timeout=120s
step "deployed $image"
