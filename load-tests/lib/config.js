// Settings shared by every scenario, from __ENV (k6 -e NAME=value, or the environment).
// Defaults point at `npm start` on this machine (publisher :8080, router :8090, gateways :9001/:9002).

export function str(name, def) {
  const v = __ENV[name];
  return v === undefined || v === '' ? def : v;
}

export function num(name, def) {
  const v = str(name, undefined);
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}: expected a non-negative number, got ${JSON.stringify(v)}`);
  return n;
}

export function list(name, def) {
  return str(name, def).split(',').map((s) => s.trim()).filter(Boolean);
}

/** Gateway base URLs (http[s]://host:port); WebSocket URLs are derived from them. */
export const GATEWAY_URLS = list('GATEWAY_URLS', 'http://127.0.0.1:9001,http://127.0.0.1:9002');
export const PUBLISHER_URL = str('PUBLISHER_URL', 'http://127.0.0.1:8080');
export const ROUTER_URL = str('ROUTER_URL', 'http://127.0.0.1:8090');
export const API_KEY = str('API_KEY', 'dev-key-change-me');
/** Optional connect token, for gateways whose namespaces are not public (FANOUT_PUBLIC_NAMESPACES). */
export const TOKEN = str('TOKEN', '');
/** Namespace of the load-test channels; each run uses fresh channel names under it. */
export const NAMESPACE = str('NAMESPACE', 'lt');

export function wsUrl(base, query = {}) {
  const q = Object.entries(TOKEN ? { ...query, token: TOKEN } : query)
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join('&');
  return base.replace(/^http/, 'ws').replace(/\/$/, '') + '/v1/ws' + (q ? `?${q}` : '');
}

/** Channel names of one run: lt:<run>-<scenario>-<i>. */
export function channels(run, scenario, count) {
  const out = [];
  for (let i = 0; i < count; i++) out.push(`${NAMESPACE}:${run}-${scenario}-${i}`);
  return out;
}

/** A run id shared by every VU (returned from setup()). */
export function runId() {
  return str('RUN_ID', Date.now().toString(36));
}

/** Picks a gateway for a VU: round-robin over GATEWAY_URLS. */
export function gatewayFor(vu) {
  return GATEWAY_URLS[(vu - 1) % GATEWAY_URLS.length];
}
