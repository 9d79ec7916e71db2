#!/bin/sh
# Make the busybox base image (skiff.local/busybox:latest) from Debian's
# busybox-static package, without installing anything and without a registry.
#
#   hack/busybox-image.sh [OUT_DIR]     (default: _output/images)
#
# writes OUT_DIR/busybox-oci (OCI image layout) and OUT_DIR/busybox.tar
# (docker-archive). Set BUSYBOX_DEB to use an already downloaded .deb.
set -eu
cd "$(dirname "$0")/.."
out=${1:-_output/images}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
deb=${BUSYBOX_DEB:-}
if [ -z "$deb" ]; then
	(cd "$tmp" && apt-get download busybox-static >&2)
	deb=$(ls "$tmp"/busybox-static_*.deb)
fi
go run ./hack/busybox-image -deb "$deb" -o-layout "$out/busybox-oci" -o-tar "$out/busybox.tar"
