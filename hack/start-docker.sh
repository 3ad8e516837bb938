#!/usr/bin/env bash
# Starts the Docker engine when it is not running (these machines have no systemd), and
# waits until it answers. Local clusters and the end-to-end tests need it.
set -euo pipefail
if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "start-docker: dockerd is not installed; run hack/setup.sh (it installs docker.io)" >&2
  exit 1
fi
echo "start-docker: starting dockerd (log: /var/log/plinth-dockerd.log)"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
# Flannel's host-gw routes and kube-proxy need bridged traffic to traverse iptables.
$sudo modprobe br_netfilter 2>/dev/null || true
nohup $sudo dockerd >/var/log/plinth-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "start-docker: dockerd did not come up; see /var/log/plinth-dockerd.log" >&2
exit 1
