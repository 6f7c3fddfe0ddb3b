#!/usr/bin/env bash
# npm run load:smoke: a short run of every k6 scenario in load-tests/ against a local cluster.
#
# Starts the cluster with `npm start` (scripts/dev-cluster.ts) in the background, on free loopback
# ports, with Kafka from KAFKA_BROKERS when set or a local broker otherwise; waits until it is
# ready; runs each scenario with small numbers and a time limit; stops the cluster. Exits non-zero
# when a scenario breaches a threshold (k6 exits 99), errors, or overruns its time limit.
#
# Settings (environment):
#   KAFKA_BROKERS            use this broker instead of starting one
#   LOAD_SMOKE_DIR           where logs and JSON summaries go (default: a new temp directory)
#   LOAD_SMOKE_SCENARIOS     space-separated subset, e.g. "ws-fanout router-lookup"
#   LOAD_SMOKE_TIMEOUT_S     time limit per scenario (default 120)
#   K6                       the k6 binary (default: k6 on PATH, else ~/.cache/fanout/bin/k6, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
log() { echo "[load-smoke] $*"; }

export K6_NO_USAGE_REPORT=true # k6 would otherwise report usage to Grafana; this runs on loopback only
TOOLS_BIN="${FANOUT_TOOLS_BIN:-$HOME/.cache/fanout/bin}"
K6="${K6:-$(command -v k6 || echo "$TOOLS_BIN/k6")}"
if [ ! -x "$K6" ]; then
  log "k6 not found: building it (scripts/install-tools.sh k6)"
  scripts/install-tools.sh k6
  K6="$TOOLS_BIN/k6"
fi
log "k6: $("$K6" version | head -1)"

DIR="${LOAD_SMOKE_DIR:-$(mktemp -d -t fanout-load-smoke.XXXXXX)}"
mkdir -p "$DIR"
SCENARIOS="${LOAD_SMOKE_SCENARIOS:-ws-fanout sse-readers long-poll publish-throughput reconnect-storm router-lookup}"
TIMEOUT_S="${LOAD_SMOKE_TIMEOUT_S:-120}"

free_port() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
export FANOUT_DEV_PUBLISHER_PORT="$(free_port)" FANOUT_DEV_ROUTER_PORT="$(free_port)"
export FANOUT_DEV_GATEWAY_PORTS="$(free_port),$(free_port)" FANOUT_DEV_KAFKA_PORT="$(free_port)"
export FANOUT_DEV_DISPATCHER_PORT="$(free_port)"
# dev-cluster gives every service its port except market-data (default 9100): a free one for it, so a
# busy 9100 does not stop the smoke run (the others' explicit FANOUT_PORT wins over this one).
export FANOUT_PORT="$(free_port)"
export FANOUT_LOG_LEVEL="${FANOUT_LOG_LEVEL:-warn}"
# Hints for a broker started here: no testcontainers (this runs where no Docker engine may answer).
export FANOUT_KAFKA_NO_DOCKER="${FANOUT_KAFKA_NO_DOCKER:-1}"

# The cluster runs in its own session, so that everything it starts can be found (and, as a last
# resort, killed) as one process group, and nothing else is touched.
setsid bash -c 'echo $$ > "$1/cluster.sid"; exec npm start' _ "$DIR" >"$DIR/cluster.log" 2>&1 < /dev/null &
for _ in $(seq 1 50); do [ -s "$DIR/cluster.sid" ] && break; sleep 0.1; done
SID=$(cat "$DIR/cluster.sid")
log "cluster starting (session $SID, log $DIR/cluster.log, Kafka: ${KAFKA_BROKERS:-a local broker})"

group_alive() { kill -0 -- "-$SID" 2>/dev/null; }
stop_cluster() {
  group_alive || return 0
  # SIGTERM to dev-cluster itself (the node process running the script), which drains every
  # service and stops Kafka; signalling the whole group would hit the services twice.
  local dev
  dev=$(pgrep -g "$SID" -f -- '--import.*scripts/dev-cluster\.ts' | head -1 || true)
  log "stopping the cluster (dev-cluster pid ${dev:-?})"
  if [ -n "$dev" ]; then kill -TERM "$dev" 2>/dev/null || true; else kill -TERM -- "-$SID" 2>/dev/null || true; fi
  for _ in $(seq 1 60); do group_alive || break; sleep 1; done
  if group_alive; then
    log "the cluster did not stop within 60 s: killing its process group"
    kill -KILL -- "-$SID" 2>/dev/null || true
  fi
}
trap stop_cluster EXIT
trap 'exit 130' INT TERM

deadline=$(( $(date +%s) + ${LOAD_SMOKE_START_TIMEOUT_S:-240} ))
until grep -q 'fanout is running' "$DIR/cluster.log"; do
  if ! group_alive || [ "$(date +%s)" -ge "$deadline" ]; then
    log "the cluster did not become ready; its log:"
    tail -n 40 "$DIR/cluster.log" >&2
    exit 1
  fi
  sleep 1
done
# The URLs as dev-cluster printed them (it falls back to other ports when one is taken).
PUBLISHER_URL=$(grep -o 'Publish API *http://[0-9.:]*' "$DIR/cluster.log" | grep -o 'http://.*' | head -1)
ROUTER_URL=$(grep -o 'Router *http://[0-9.:]*' "$DIR/cluster.log" | grep -o 'http://.*' | head -1)
GATEWAY_URLS=$(grep -o 'WebSocket .*' "$DIR/cluster.log" | grep -o 'ws://[0-9.:]*' | sed 's#^ws#http#' | paste -sd, -)
log "ready after $(( $(date +%s) - started )) s: publisher $PUBLISHER_URL, router $ROUTER_URL, gateways $GATEWAY_URLS"

# Small numbers: correctness thresholds (nothing missing, duplicated, reset, refused) are exact;
# latency thresholds are loose enough for a busy 2-core CI machine running Kafka, the cluster and k6.
common=(-e "GATEWAY_URLS=$GATEWAY_URLS" -e "PUBLISHER_URL=$PUBLISHER_URL" -e "ROUTER_URL=$ROUTER_URL" -e "RUN_ID=smoke$(date +%s)")
declare -A params=(
  [ws-fanout]="-e VUS=2 -e SOCKETS_PER_VU=25 -e CHANNELS=4 -e PUBLISH_RATE=10 -e PUBLISH_S=8 -e P95_MS=1000 -e P99_MS=2500"
  [sse-readers]="-e VUS=4 -e CHANNELS=2 -e PUBLISH_RATE=10 -e PUBLISH_S=8 -e WINDOW_S=3"
  [long-poll]="-e VUS=4 -e CHANNELS=2 -e PUBLISH_RATE=10 -e PUBLISH_S=8 -e P95_MS=1000 -e P99_MS=2500"
  [publish-throughput]="-e RATE=20 -e BATCH=50 -e DURATION=8s -e P95_MS=1000"
  [reconnect-storm]="-e VUS=2 -e SOCKETS_PER_VU=20 -e CHANNELS=2 -e PUBLISH_RATE=20 -e STORMS=2 -e STORM_EVERY_S=3 -e RECONNECT_P95_MS=2000"
  [router-lookup]="-e RATE=200 -e DURATION=8s -e P95_MS=100"
)

failed=()
results=()
for s in $SCENARIOS; do
  # dev-cluster stops everything when one service exits: then there is nothing left to measure.
  if ! group_alive || grep -q 'stopping the cluster' "$DIR/cluster.log"; then
    log "the cluster stopped before scenario $s:"
    grep -E 'exited|stopping|Error' "$DIR/cluster.log" | tail -n 10 >&2
    failed+=("$s (cluster down)")
    results+=("FAIL  $s: the cluster stopped")
    continue
  fi
  [ -f "load-tests/$s.js" ] || { log "no scenario load-tests/$s.js"; failed+=("$s"); continue; }
  log "scenario $s"
  t0=$(date +%s)
  rc=0
  # shellcheck disable=SC2086
  timeout --kill-after=10 "$TIMEOUT_S" "$K6" run --quiet --no-usage-report "${common[@]}" ${params[$s]:-} \
    -e "SUMMARY_JSON=$DIR/$s.summary.json" "load-tests/$s.js" >"$DIR/$s.log" 2>&1 || rc=$?
  # The scenario's compact summary (k6's own log lines, e.g. the SSE windows' timeouts, stay in the file).
  sed -n '/^== /,$p' "$DIR/$s.log" | grep -v '^time=' || true
  case $rc in
    0) results+=("ok    $s ($(( $(date +%s) - t0 )) s)") ;;
    99) results+=("FAIL  $s: thresholds breached"); failed+=("$s") ;;
    124|137) results+=("FAIL  $s: over the ${TIMEOUT_S} s limit"); failed+=("$s") ;;
    *) results+=("FAIL  $s: k6 exited $rc (see $DIR/$s.log)"); failed+=("$s"); tail -n 20 "$DIR/$s.log" ;;
  esac
done

log "results (logs and JSON summaries in $DIR):"
printf '  %s\n' "${results[@]}"
log "done in $(( $(date +%s) - started )) s"
total=$(echo "$SCENARIOS" | wc -w)
log "$(( total - ${#failed[@]} )) of $total scenarios within their thresholds"
[ ${#failed[@]} -eq 0 ]
