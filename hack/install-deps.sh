#!/usr/bin/env bash
# Installs the Debian packages ferrokube builds and tests with, when any is missing.
# Used by `make up`, `make test` and CI; safe to run again.
set -euo pipefail

PACKAGES=(
  etcd-server etcd-client          # the apiserver's storage
  protobuf-compiler libprotobuf-dev # etcd-client's and the CRI protos' build
  containerd runc containernetworking-plugins busybox-static  # kubelet: CRI runtime, CNI, offline images
  nftables iptables conntrack iproute2 python3 util-linux  # kube-proxy modes, test networks and backends
  procps mount curl ca-certificates openssl tzdata  # test cleanup, certificates (gen-pki.sh), CronJob time zones
  gcc make                          # jemalloc's build (the scheduler's allocator)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""
  [[ $(id -u) == 0 ]] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "cargo (Rust 1.89+) is required: https://rustup.rs" >&2; exit 1; }
command -v kubectl >/dev/null || echo "note: kubectl is not on PATH; install it to use the cluster" >&2
