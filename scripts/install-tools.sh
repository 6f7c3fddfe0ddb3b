#!/usr/bin/env bash
# Installs the deploy and load-test tools, idempotently:
#   helm      go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION   (Go module proxy)
#   k6        go install go.k6.io/k6@$K6_VERSION                   (Go module proxy)
#   centrifugo  go install github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION   (Go module
#             proxy; the peer that `npm run bench:peers` measures the gateway against)
#   promtool  Debian package `prometheus`                          (apt)
#   pyyaml    Debian package `python3-yaml`, which the deploy tests parse YAML with (apt; usually present)
# The Go binaries are cached in $FANOUT_TOOLS_BIN (default ~/.cache/fanout/bin) and rebuilt only
# when missing or of another version; promtool is installed only when absent. Prints how long each
# step took. Put the tools on PATH with:  export PATH="$HOME/.cache/fanout/bin:$PATH"
#
# Usage: scripts/install-tools.sh [helm] [k6] [centrifugo] [promtool] [pyyaml]   (no argument: all
# but centrifugo, which only the peers benchmark needs)
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
K6_VERSION="${K6_VERSION:-v1.8.1}"
CENTRIFUGO_VERSION="${CENTRIFUGO_VERSION:-v6.9.1}"
BIN="${FANOUT_TOOLS_BIN:-$HOME/.cache/fanout/bin}"
mkdir -p "$BIN"
log() { echo "[tools] $*"; }

# A version stamp beside each binary says which version it is (helm and k6 built without the
# release ldflags do not always print their module version).
have() { [ -x "$BIN/$1" ] && [ "$(cat "$BIN/.$1.version" 2>/dev/null)" = "$2" ]; }

go_tool() { # name module version [function printing extra ldflags]
  local name=$1 module=$2 version=$3 ldflags="-s -w" t0
  if have "$name" "$version"; then
    log "$name $version: cached at $BIN/$name"
    return
  fi
  command -v go >/dev/null 2>&1 || { echo "[tools] go is required to build $name (apt-get install golang-go, or Go from go.dev)" >&2; exit 1; }
  [ -z "${4:-}" ] || ldflags="$ldflags $($4)"
  log "$name $version: building with go install $module@$version (first time only)"
  t0=$(date +%s)
  # -trimpath and -s -w: reproducible and about a third smaller; CGO off: a static binary.
  GOBIN="$BIN" CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -trimpath" go install -ldflags="$ldflags" "$module@$version"
  echo "$version" >"$BIN/.$name.version"
  log "$name $version: built in $(( $(date +%s) - t0 )) s"
}

# helm's release builds stamp its version and the Kubernetes version it assumes without a cluster
# (from its client-go module, as helm's Makefile does); a bare go install would claim Kubernetes
# 1.20, and `helm template` would refuse charts that need a newer one.
helm_ldflags() {
  local gomod minor
  gomod=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  minor=$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod" | head -1)
  [ -n "$minor" ] || { echo "[tools] could not read helm's client-go version from $gomod" >&2; exit 1; }
  local x="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.metadata="
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    x="$x -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
  done
  echo "$x"
}

# Centrifugo's release builds stamp their version (goreleaser's ldflags); without it `centrifugo
# version` says 0.0.0. The usage-stats endpoint and token stay empty, so the binary reports nothing.
centrifugo_ldflags() {
  echo "-X github.com/centrifugal/centrifugo/v6/internal/build.Version=${CENTRIFUGO_VERSION#v}"
}

promtool_apt() {
  local t0
  if command -v promtool >/dev/null 2>&1; then
    log "promtool: present ($(promtool --version 2>&1 | head -1))"
    return
  fi
  log "promtool: installing the Debian package prometheus"
  t0=$(date +%s)
  export DEBIAN_FRONTEND=noninteractive
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # The package would start a Prometheus server where an init system runs; only promtool is wanted.
  $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  log "promtool: installed in $(( $(date +%s) - t0 )) s ($(promtool --version 2>&1 | head -1))"
}

pyyaml_apt() {
  if python3 -c 'import yaml' >/dev/null 2>&1; then
    log "pyyaml: present"
    return
  fi
  log "pyyaml: installing the Debian package python3-yaml"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null
}

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(helm k6 promtool pyyaml)
for t in "${want[@]}"; do
  case "$t" in
    helm) go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" helm_ldflags ;;
    k6) go_tool k6 go.k6.io/k6 "$K6_VERSION" ;;
    centrifugo) go_tool centrifugo github.com/centrifugal/centrifugo/v6 "$CENTRIFUGO_VERSION" centrifugo_ldflags ;;
    promtool) promtool_apt ;;
    pyyaml) pyyaml_apt ;;
    *) echo "[tools] unknown tool $t (helm, k6, centrifugo, promtool, pyyaml)" >&2; exit 2 ;;
  esac
done
