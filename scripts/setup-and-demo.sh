#!/usr/bin/env bash
# One command from a fresh Debian 12 / Ubuntu 24.04 machine to a running container:
#   1. installs the system packages tsrun and its tests need, the npm dependencies, and builds;
#   2. starts a local *insecure* registry (Debian's docker-registry, plain HTTP) on 127.0.0.1:5000;
#   3. builds a busybox image from the host's busybox-static and publishes it there with skopeo;
#   4. pulls it with tsrun and runs a container that prints what it sees.
# Idempotent; run as root. TSRUN_DEMO_PORT changes the registry port.
set -euo pipefail
cd "$(dirname "$0")/.."

port=${TSRUN_DEMO_PORT:-5000}
registry="127.0.0.1:$port"

if [ "$(id -u)" != 0 ]; then
  echo "setup-and-demo: run as root (sudo $0): containers need root, and packages are installed with apt" >&2
  exit 1
fi

echo "== 1. system packages"
# The engine's needs first; then what the tests compare against or drive (skopeo, umoci, buildah,
# podman, runc, containerd, zstd, iperf3), check (vagrant validates vagrant/Vagrantfile, and
# the scripts pass shellcheck) or teach with (libcap2-bin's capsh in the lab's by-hand track).
packages=(gcc libc6-dev libjson-c-dev make busybox-static docker-registry skopeo umoci openssl iproute2 iptables util-linux procps hostname python3 curl ca-certificates iperf3 uidmap passwd buildah podman runc containerd zstd vagrant shellcheck libcap2-bin)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts the packaged registry as a service on :5000; the demo runs its own.
if systemctl is-active --quiet docker-registry 2>/dev/null; then systemctl stop docker-registry; fi
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "setup-and-demo: tsrun needs Node.js >= 20 (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

echo "== 2. npm dependencies and build"
npm ci --no-audit --no-fund

# `tsrun` on PATH, as the README and the lab use it: the native front (native/front/tsrun.c),
# which runs a plain exec itself and dist/tsrun.cjs with Node for everything else.
ln -sf "$PWD/native/build/tsrun" /usr/local/bin/tsrun

echo "== 3. a local insecure registry on $registry"
work=$(mktemp -d /tmp/tsrun-demo-XXXX)
tsrun=tsrun
# The demo's containers run on a network of its own, removed at the end with its bridge and
# firewall rules: the host's network is left as the demo found it.
demo_net="tsrun-demo"
cleanup() {
  if [ -f "$work/registry.pid" ]; then kill "$(cat "$work/registry.pid")" 2>/dev/null || true; fi
  $tsrun network rm "$demo_net" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
cat >"$work/config.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/data
http:
  addr: $registry
log:
  level: error
YML
docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
echo $! >"$work/registry.pid"
for _ in $(seq 50); do curl -fsS "http://$registry/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://$registry/v2/" >/dev/null || { cat "$work/registry.log"; exit 1; }

echo "== 4. an image from the host's busybox, published with skopeo"
node scripts/make-busybox-image.mjs --out "$work/image" --tag latest
skopeo copy --quiet --dest-tls-verify=false "oci:$work/image:latest" "docker://$registry/busybox:latest"

echo "== 5. tsrun pull (plain HTTP: loopback registries are insecure by default, as in docker)"
$tsrun pull "$registry/busybox:latest"

echo "== 6. tsrun run: what a container sees"
$tsrun network inspect "$demo_net" >/dev/null 2>&1 || $tsrun network create "$demo_net" >/dev/null
# shellcheck disable=SC2016 # the container's shell expands these, not this one
$tsrun run --rm --network "$demo_net" "$registry/busybox:latest" sh -c '
  echo "hostname:   $(hostname)"
  echo "PID 1:      $(cat /proc/1/comm) (my PID is $$)"
  echo "cgroup:     $(cat /proc/self/cgroup | head -1)"
  echo "namespaces: $(ls /proc/self/ns | tr "\n" " ")"
  echo "interfaces: $(ls /sys/class/net | tr "\n" " ")"
  echo "caps:       $(grep CapEff /proc/self/status)"'

echo "== 7. tsrun build: an image from examples/hello/Dockerfile, then run it"
$tsrun build --progress plain --network none --build-arg "BASE=$registry/busybox:latest" -t hello examples/hello
$tsrun run --rm --network none hello
echo "== done: tsrun works on this machine"
