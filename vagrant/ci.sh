#!/usr/bin/env bash
# The test suite inside a Vagrant box: the README's two commands, run in the box.
#
#   vagrant/ci.sh                 the debian box
#   vagrant/ci.sh ubuntu          the ubuntu box
#   vagrant/ci.sh all             both, then a pull across the boxes' registries
#   TSRUN_CI_DESTROY=1 vagrant/ci.sh ...   destroy the boxes afterwards
#
# Needs Vagrant and a provider (VirtualBox or libvirt) on the host, and network access from
# the boxes (packages, npm, Node.js from nodejs.org: Debian 12 and Ubuntu 24.04 ship Node 18).
set -euo pipefail
cd "$(dirname "$0")"

target=${1:-debian}
case "$target" in
  debian | ubuntu) boxes=("$target") ;;
  all) boxes=(debian ubuntu) ;;
  *) echo "usage: $0 [debian|ubuntu|all]" >&2; exit 2 ;;
esac

if [ "${TSRUN_CI_DESTROY:-0}" = 1 ]; then
  trap 'vagrant destroy -f "${boxes[@]}"' EXIT
fi

for box in "${boxes[@]}"; do
  echo "== $box: up and provisioned"
  vagrant up "$box"
  # An already running box gets the current tree and a provision run (which changes nothing
  # if nothing changed).
  vagrant rsync "$box"
  vagrant provision "$box"
  echo "== $box: setup and tests (README: sudo ./scripts/setup-and-demo.sh; sudo npm test)"
  vagrant ssh "$box" -c 'cd /vagrant && sudo ./scripts/setup-and-demo.sh && sudo TSRUN_REQUIRE_PRIVILEGED=1 npm test'
done

if [ "$target" = all ]; then
  echo "== across the boxes: each pulls from the other's registry over plain HTTP"
  vagrant ssh debian -c 'sudo tsrun pull 192.168.56.11:5000/busybox:latest && sudo tsrun run --rm 192.168.56.11:5000/busybox:latest uname -n'
  vagrant ssh ubuntu -c 'sudo tsrun pull 192.168.56.10:5000/busybox:latest && sudo tsrun run --rm 192.168.56.10:5000/busybox:latest uname -n'
fi
echo "== ci in a box: done"
