#!/usr/bin/env bash
# Builds every example image, pushes it to the embedded registry and
# deploys the apps on the running Skiff cluster (`make demo` runs this after
# `make build examples`). Idempotent: run it again after a change.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v skiff >/dev/null || export PATH="$PWD/bin:$PATH"
export KUBECONFIG=${KUBECONFIG:-/var/lib/skiff/admin.kubeconfig}
registry=${REGISTRY:-localhost:5000}

image() { # app version
  skiff build -q -t "$registry/$1:$2" --build-arg "VERSION=$2" "examples/$1" >/dev/null
  skiff push "$registry/$1:$2" >/dev/null
  echo "built and pushed $registry/$1:$2"
}
image hello v1.0
image hello v1.1
image productms v1
image productreviewms v1
image productreviewms v2
image ui v1
image ui v2
image loadgen v1

kubectl apply -f examples/hello/k8s/
kubectl apply -f examples/productms/k8s/namespace.yaml
kubectl apply -f examples/productms/k8s/ -f examples/productreviewms/k8s/ -f examples/ui/k8s/
kubectl rollout status deployment/hello --timeout=120s
for d in productms productreviewms-v1 productreviewms-v2 ui-v1; do
  kubectl -n shop rollout status "deployment/$d" --timeout=120s
done
kubectl get pods -A -o wide
