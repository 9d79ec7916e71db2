#!/usr/bin/env bash
# Regenerates internal/openapi/zz_generated.openapi.go: the OpenAPI schema
# definitions of the Kubernetes API types Skiff serves, produced by
# k8s.io/kube-openapi's openapi-gen from the k8s.io/api and
# k8s.io/apimachinery packages at the versions pinned in go.mod.
#
# Usage: hack/update-openapi.sh   (from anywhere inside the repository)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"

# Run the generator at exactly the kube-openapi version go.mod pins, so the
# generated code matches the library that consumes it.
version="$(go list -m -f '{{.Version}}' k8s.io/kube-openapi)"

# Input packages: the API groups Skiff serves (and a few it will serve), and
# the apimachinery packages their types depend on. The groups are also
# registered in addToScheme in internal/openapi/names.go; packages the loop
# below adds only supply field types and need not be.
pkgs=(
  k8s.io/api/core/v1
  k8s.io/api/apps/v1
  k8s.io/api/batch/v1
  k8s.io/api/autoscaling/v1
  k8s.io/api/autoscaling/v2
  k8s.io/api/networking/v1
  k8s.io/api/discovery/v1
  k8s.io/api/coordination/v1
  k8s.io/api/certificates/v1
  k8s.io/api/policy/v1
  k8s.io/api/rbac/v1
  k8s.io/api/storage/v1
  k8s.io/api/scheduling/v1
  k8s.io/api/scheduling/v1alpha3 # field types of batch/v1 Job
  k8s.io/apimachinery/pkg/apis/meta/v1
  k8s.io/apimachinery/pkg/runtime
  k8s.io/apimachinery/pkg/util/intstr
  k8s.io/apimachinery/pkg/api/resource
  k8s.io/apimachinery/pkg/version
)

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
: >"${tmp}/boilerplate.go.txt"

# Upstream's types have known API-rule violations (upstream keeps an
# exception list); they are reported to a file instead of failing the run.
generate() {
  go run "k8s.io/kube-openapi/cmd/openapi-gen@${version}" \
    --go-header-file "${tmp}/boilerplate.go.txt" \
    --output-dir internal/openapi \
    --output-pkg skiff.dev/skiff/internal/openapi \
    --output-file zz_generated.openapi.go \
    --report-filename "${tmp}/violations.txt" \
    "${pkgs[@]}"
}

# Types of packages outside the inputs are referenced by Go name,
# ref("k8s.io/api/scheduling/v1alpha3.Workload...") (batch/v1 uses such
# types), and have no definition. Add their packages and regenerate until
# every reference resolves.
out=internal/openapi/zz_generated.openapi.go
for _ in 1 2 3 4 5; do
  generate
  missing="$(grep -o 'ref("[^"]*")' "${out}" | sed -E 's/^ref\("(.*)\.[^.]*"\)$/\1/' | sort -u || true)"
  if [[ -z "${missing}" ]]; then
    gofmt -l -w "${out}" >/dev/null
    echo "wrote ${out} ($(wc -l <"${out}") lines, ${#pkgs[@]} packages, $(wc -l <"${tmp}/violations.txt") API-rule notes)"
    exit 0
  fi
  echo "adding packages referenced by the generated definitions: ${missing}" >&2
  pkgs+=(${missing})
done
echo "references still unresolved after 5 rounds" >&2
exit 1
