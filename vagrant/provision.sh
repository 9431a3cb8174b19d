#!/usr/bin/env bash
# Provisions a machine for tsrun: the system packages, Node.js >= 20, tsrun built from source
# in its own directory, a `tsrun` command, /etc/tsrun/config.json, and a registry (Debian's or
# Ubuntu's docker-registry) on a given address over plain HTTP, seeded with a busybox image.
# Vagrant runs it in each box (see Vagrantfile); it runs on any Debian 12 / Ubuntu 24.04 too.
#
# Idempotent: every step first checks, then acts only if needed, and says which ("ok:" or
# "changed:"); a second run changes nothing. Run as root.
#
#   sudo vagrant/provision.sh            provision
#   sudo vagrant/provision.sh --stop     stop the registry it started as a background process
#
# Settings (environment):
#   TSRUN_PROVISION_SOURCE         the tsrun checkout to build (default: this script's repository)
#   TSRUN_PROVISION_PREFIX         where tsrun is installed and built (default /opt/tsrun)
#   TSRUN_PROVISION_BIN_DIR        where the `tsrun` command goes (default /usr/local/bin)
#   TSRUN_PROVISION_CONFIG         tsrun's config file (default /etc/tsrun/config.json)
#   TSRUN_PROVISION_PEER           host:port of another registry to declare insecure in it
#   TSRUN_PROVISION_REGISTRY_ADDR  host:port the registry listens on (none: no registry)
#   TSRUN_PROVISION_STATE          the registry's config, data, pid and log (default /var/lib/tsrun-registry)
#   TSRUN_PROVISION_SERVICES       1: the registry is a systemd service; 0: a background process
#                                  with a pid file (default: 1 when systemd runs this machine)
#   TSRUN_PROVISION_NODE_MAJOR     Node.js major to download when the distribution's is < 20 (default 24)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "${TSRUN_PROVISION_SOURCE:-$here/..}" && pwd)
prefix=${TSRUN_PROVISION_PREFIX:-/opt/tsrun}
bin_dir=${TSRUN_PROVISION_BIN_DIR:-/usr/local/bin}
config=${TSRUN_PROVISION_CONFIG:-/etc/tsrun/config.json}
peer=${TSRUN_PROVISION_PEER:-}
registry_addr=${TSRUN_PROVISION_REGISTRY_ADDR:-}
state=${TSRUN_PROVISION_STATE:-/var/lib/tsrun-registry}
node_major=${TSRUN_PROVISION_NODE_MAJOR:-24}
if [ -z "${TSRUN_PROVISION_SERVICES:-}" ]; then
  # systemd is PID 1 exactly when this directory exists (sd_booted(3)).
  if [ -d /run/systemd/system ]; then services=1; else services=0; fi
else
  services=$TSRUN_PROVISION_SERVICES
fi
unit=/etc/systemd/system/tsrun-registry.service

changes=0
ok() { echo "ok:      $*"; }
changed() { echo "changed: $*"; changes=$((changes + 1)); }
die() { echo "provision: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (sudo $0)"

stop_background_registry() {
  local pid
  pid=$(cat "$state/registry.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "stopped the registry (pid $pid)"
  fi
  rm -f "$state/registry.pid"
}

if [ "${1:-}" = --stop ]; then
  stop_background_registry
  exit 0
fi

# --- 1. system packages ------------------------------------------------------------------
# What tsrun, its tests and the lab use (the same list as scripts/setup-and-demo.sh).
packages=(gcc libc6-dev libjson-c-dev make busybox-static docker-registry skopeo umoci openssl apache2-utils
  iproute2 iptables util-linux python3 curl ca-certificates xz-utils uidmap)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  changed "installed ${missing[*]}"
else
  ok "system packages"
fi

# --- 2. Node.js >= 20 --------------------------------------------------------------------
node_version() { node -p 'process.versions.node' 2>/dev/null || echo 0; }
major() { echo "${1%%.*}"; }
if [ "$(major "$(node_version)")" -ge 20 ]; then
  ok "node $(node_version) ($(command -v node))"
else
  candidate=$(apt-cache policy nodejs 2>/dev/null | awk '/Candidate:/ { print $2 }')
  # "18.19.0+dfsg-6~deb12u2" or "1:20.11.0..." -> its major
  cmajor=$(echo "${candidate:-0}" | sed 's/^[0-9]*://; s/[^0-9].*//')
  if [ "${cmajor:-0}" -ge 20 ]; then
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    changed "installed the distribution's nodejs $candidate"
  else
    # Debian 12 and Ubuntu 24.04 ship Node 18: fetch the official binary, if this machine is online.
    case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) die "no official Node.js binary for $(uname -m)" ;; esac
    base="https://nodejs.org/dist/latest-v${node_major}.x"
    echo "the distribution's nodejs is ${candidate:-absent} (< 20): downloading Node.js $node_major from nodejs.org"
    sums=$(curl -fsSL --max-time 30 "$base/SHASUMS256.txt") ||
      die "tsrun needs Node.js >= 20; the distribution has ${candidate:-none} and nodejs.org is not reachable (offline?). Install Node.js >= 20 and run this again."
    file=$(echo "$sums" | awk -v a="linux-$arch.tar.xz" '$2 ~ a"$" { print $2 }')
    [ -n "$file" ] || die "no linux-$arch tarball in $base/SHASUMS256.txt"
    tmp=$(mktemp -d)
    curl -fsSL --max-time 300 -o "$tmp/$file" "$base/$file"
    (cd "$tmp" && echo "$sums" | grep " $file\$" | sha256sum -c --quiet -) || die "checksum mismatch for $file"
    mkdir -p /usr/local/lib/nodejs
    tar -C /usr/local/lib/nodejs -xJf "$tmp/$file"
    rm -rf "$tmp"
    for b in node npm npx; do ln -sfn "/usr/local/lib/nodejs/${file%.tar.xz}/bin/$b" "/usr/local/bin/$b"; done
    hash -r
    changed "installed Node.js $(node_version) from nodejs.org in /usr/local/lib/nodejs"
  fi
fi

# --- 3. tsrun, built in its own directory --------------------------------------------------
# The build happens in $prefix, never in the source (a synced folder, or someone's checkout):
# copy, `npm ci` (dependencies, TypeScript build, the native helper), then swap in.
# A fingerprint of the source and of Node decides whether anything needs doing.
excludes=(--exclude=./.git --exclude=./node_modules --exclude=./dist --exclude=./native/build
  --exclude=./.tmp --exclude=./vagrant/.vagrant)
fingerprint() {
  (cd "$source_dir" && find . \( -path ./.git -o -path ./node_modules -o -path ./dist -o -path ./native/build \
    -o -path ./.tmp -o -path ./vagrant/.vagrant \) -prune -o -type f -print0 | sort -z | xargs -0 sha256sum) |
    { cat; node --version; } | sha256sum | cut -d' ' -f1
}
want=$(fingerprint)
if [ "$(cat "$prefix/.provision-fingerprint" 2>/dev/null)" = "$want" ] && [ -x "$prefix/dist/tsrun.cjs" ]; then
  ok "tsrun built in $prefix"
else
  rm -rf "$prefix.new"
  mkdir -p "$prefix.new"
  tar -C "$source_dir" "${excludes[@]}" -cf - . | tar -C "$prefix.new" -xf -
  (cd "$prefix.new" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" >"$prefix.new/.provision-fingerprint"
  rm -rf "$prefix.old"
  if [ -e "$prefix" ]; then mv "$prefix" "$prefix.old"; fi
  mv "$prefix.new" "$prefix"
  rm -rf "$prefix.old"
  changed "built tsrun from $source_dir in $prefix"
fi

# --- 4. the tsrun command ----------------------------------------------------------------
mkdir -p "$bin_dir"
if [ "$(readlink "$bin_dir/tsrun" 2>/dev/null)" = "$prefix/dist/tsrun.cjs" ]; then
  ok "$bin_dir/tsrun"
else
  ln -sfn "$prefix/dist/tsrun.cjs" "$bin_dir/tsrun"
  changed "$bin_dir/tsrun -> $prefix/dist/tsrun.cjs"
fi

# write_if_changed FILE CONTENT DESCRIPTION: returns 0 if it wrote.
write_if_changed() {
  if [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; then
    ok "$3"
    return 1
  fi
  mkdir -p "$(dirname "$1")"
  printf '%s\n' "$2" >"$1.tmp"
  mv "$1.tmp" "$1"
  changed "$3"
  return 0
}

# --- 5. /etc/tsrun/config.json: the other box's registry is insecure -----------------------
if [ -n "$peer" ]; then
  write_if_changed "$config" "{ \"insecure-registries\": [\"$peer\"] }" "$config declares $peer insecure" || true
else
  ok "no peer registry to declare (TSRUN_PROVISION_PEER)"
fi

# --- 6. the registry ---------------------------------------------------------------------
if [ -z "$registry_addr" ]; then
  ok "no registry (TSRUN_PROVISION_REGISTRY_ADDR is empty)"
  echo "provision: done, $changes change(s)"
  exit 0
fi

mkdir -p "$state/data"
registry_yml="version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $state/data}, delete: {enabled: true}}
http: {addr: \"$registry_addr\"}"
config_changed=0
write_if_changed "$state/registry.yml" "$registry_yml" "registry config $state/registry.yml" && config_changed=1

if [ "$services" = 1 ]; then
  # The packaged service listens on :5000 on every address, with a config that wants an
  # htpasswd file: off, in favour of ours on one address.
  if systemctl is-enabled --quiet docker-registry 2>/dev/null || systemctl is-active --quiet docker-registry 2>/dev/null; then
    systemctl disable --now --quiet docker-registry
    changed "disabled the packaged docker-registry service"
  else
    ok "the packaged docker-registry service is off"
  fi
  unit_text="[Unit]
Description=Registry for tsrun (plain HTTP on $registry_addr)
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=/usr/bin/docker-registry serve $state/registry.yml
Restart=on-failure

[Install]
WantedBy=multi-user.target"
  if write_if_changed "$unit" "$unit_text" "$unit"; then
    systemctl daemon-reload
    config_changed=1
  fi
  if ! systemctl is-enabled --quiet tsrun-registry; then
    systemctl enable --quiet tsrun-registry
    changed "enabled tsrun-registry.service"
  fi
  if [ "$config_changed" = 1 ] && systemctl is-active --quiet tsrun-registry; then
    systemctl restart tsrun-registry
    changed "restarted tsrun-registry.service"
  elif ! systemctl is-active --quiet tsrun-registry; then
    systemctl start tsrun-registry
    changed "started tsrun-registry.service on $registry_addr"
  else
    ok "tsrun-registry.service running on $registry_addr"
  fi
else
  pid=$(cat "$state/registry.pid" 2>/dev/null || true)
  running=0
  if [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q "serve $state/registry.yml"; then running=1; fi
  if [ "$running" = 1 ] && [ "$config_changed" = 1 ]; then
    stop_background_registry
    running=0
  fi
  if [ "$running" = 1 ]; then
    ok "registry running on $registry_addr (pid $pid)"
  else
    setsid /usr/bin/docker-registry serve "$state/registry.yml" >>"$state/registry.log" 2>&1 </dev/null &
    echo $! >"$state/registry.pid"
    changed "started the registry on $registry_addr (pid $!, $state/registry.pid)"
  fi
fi
for _ in $(seq 100); do curl -fs "http://$registry_addr/v2/" >/dev/null && break; sleep 0.1; done
curl -fs "http://$registry_addr/v2/" >/dev/null || die "the registry does not answer on http://$registry_addr/v2/ (log: $state/registry.log, or journalctl -u tsrun-registry)"

# --- 7. an image in it ---------------------------------------------------------------------
accept='application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json'
if curl -fs -o /dev/null -H "Accept: $accept" "http://$registry_addr/v2/busybox/manifests/latest"; then
  ok "busybox:latest in the registry"
else
  rm -rf "$state/busybox-oci"
  node "$prefix/scripts/make-busybox-image.mjs" --out "$state/busybox-oci" --tag latest >/dev/null
  skopeo copy --quiet --dest-tls-verify=false "oci:$state/busybox-oci:latest" "docker://$registry_addr/busybox:latest"
  rm -rf "$state/busybox-oci"
  changed "pushed busybox:latest to $registry_addr"
fi

# --- 8. what this machine is ---------------------------------------------------------------
if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
  ok "cgroup v2"
else
  ok "cgroup v1 or hybrid here (the Vagrant boxes are pure v2)"
fi
echo "provision: done, $changes change(s); try: tsrun pull $registry_addr/busybox:latest${peer:+, tsrun pull $peer/busybox:latest}"
