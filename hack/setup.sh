#!/usr/bin/env bash
# Installs what building and testing Plinth needs on a fresh Debian 12 machine.
# Safe to run again: it installs only what is missing. Needs root (or sudo) for apt-get.
set -euo pipefail

# docker.io runs local clusters; runc, iptables and mount are copied into the node image;
# gcc and libc6-dev build the race detector and flanneld (cgo, linked statically);
# squashfs-tools and e2fsprogs make the OS image's file systems (make image-os); qemu-system-x86, qemu-utils and ovmf (UEFI firmware) boot it (make e2e-qemu); iproute2 makes the network of QEMU clusters;
# busybox-static, bind9-dnsutils (dig), netcat-openbsd and curl go into the conformance tests' images (make conformance).
packages=(make gcc libc6-dev git openssl ca-certificates docker.io runc iptables mount squashfs-tools e2fsprogs qemu-system-x86 qemu-utils ovmf iproute2 busybox-static bind9-dnsutils netcat-openbsd curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Go: Debian 12's own golang package is too old; Plinth needs Go 1.26 from /usr/local/go.
export PATH="/usr/local/go/bin:$PATH"
if ! command -v go >/dev/null 2>&1; then
  echo "setup: Go is not installed. Install Go 1.26 or newer into /usr/local/go (see README.md)." >&2
  exit 1
fi
have=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n' 1.26 "$have" | sort -V | head -n1)" != 1.26 ]; then
  echo "setup: Go $have is too old; Plinth needs Go 1.26 or newer." >&2
  exit 1
fi
"$(dirname "$0")/start-docker.sh"
echo "setup: ready (go $have, $(openssl version | cut -d' ' -f1-2), docker $(docker version --format '{{.Server.Version}}'))"
