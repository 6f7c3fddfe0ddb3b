// The live ticks board: one WebSocket to this gateway's /v1/ws, subscribed to prices:<SYMBOL> for a
// few symbols (?symbols=AAPL,MSFT overrides the default), showing bid/ask/last as they arrive.
//
// Reconnects with exponential backoff and full jitter; when the gateway sends a reconnect frame
// (drain on deploy), waits exactly the delay it asks for. Plain browser JS, no build step.

const DEFAULT_SYMBOLS = ['AAPL', 'MSFT', 'GOOG', 'AMZN', 'NVDA', 'TSLA'];
const SYMBOL_RE = /^[A-Za-z0-9._=@-]{1,200}$/;
const MAX_SYMBOLS = 100; // channels per subscribe frame
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 15_000;
/** A connection that lasted this long resets the backoff. */
const STABLE_MS = 5_000;
/** A row with no update for this long is dimmed. */
const STALE_MS = 15_000;
/** Close codes at or above this mean "do not reconnect" (protocol violation, unauthorized). */
const NO_RECONNECT_FROM = 4500;

const $ = (id) => document.getElementById(id);
const el = {
  state: $('state'),
  detail: $('detail'),
  toggle: $('toggle'),
  node: $('node'),
  region: $('region'),
  rate: $('rate'),
  total: $('total'),
  latency: $('latency'),
  board: $('board'),
  rows: $('rows'),
  log: $('log'),
  form: $('symbols-form'),
  input: $('symbols-input'),
};

// ---------------------------------------------------------------------------------------------
// Symbols and rows

function symbolsFrom(search) {
  const raw = new URLSearchParams(search).get('symbols');
  if (raw === null) return DEFAULT_SYMBOLS;
  const list = raw
    .split(',')
    .map((s) => s.trim().toUpperCase())
    .filter((s) => SYMBOL_RE.test(s));
  const unique = [...new Set(list)].slice(0, MAX_SYMBOLS);
  return unique.length > 0 ? unique : DEFAULT_SYMBOLS;
}

const symbols = symbolsFrom(location.search);
const channels = symbols.map((s) => `prices:${s}`);

/** symbol -> row state */
const rows = new Map();

function cell(tr, cls, text) {
  const td = document.createElement('td');
  td.className = cls;
  td.textContent = text;
  tr.appendChild(td);
  return td;
}

for (const sym of symbols) {
  const tr = document.createElement('tr');
  tr.dataset.symbol = sym;
  tr.className = 'waiting';
  const row = {
    tr,
    sym: cell(tr, 'sym', sym),
    bid: cell(tr, 'bid', '–'),
    ask: cell(tr, 'ask', '–'),
    last: cell(tr, 'last', '–'),
    chg: cell(tr, 'chg', '–'),
    size: cell(tr, 'size', '–'),
    count: cell(tr, 'count', '0'),
    shown: { bid: null, ask: null, last: null },
    first: null,
    updates: 0,
    updatedAt: 0,
    pending: null,
  };
  rows.set(sym, row);
  el.rows.appendChild(tr);
}
el.input.value = symbols.join(',');

// ---------------------------------------------------------------------------------------------
// Formatting and rendering

function num(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function price(v) {
  if (v === null) return '–';
  return Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(4);
}

function flash(td, dir) {
  td.classList.remove('flash-up', 'flash-down');
  void td.offsetWidth; // restart the animation
  td.classList.add(dir === 'up' ? 'flash-up' : 'flash-down');
}

/** Shows a new value in a price cell; flashes and colours it by direction when it changed. */
function setPrice(row, key, value, withArrow) {
  const td = row[key];
  const before = row.shown[key];
  if (value === before) return;
  row.shown[key] = value;
  const text = price(value);
  if (before !== null && value !== null) {
    const dir = value > before ? 'up' : 'down';
    td.dataset.dir = dir;
    flash(td, dir);
  }
  if (withArrow && td.dataset.dir) {
    td.textContent = '';
    const arrow = document.createElement('span');
    arrow.className = 'arrow';
    arrow.textContent = td.dataset.dir === 'up' ? '▲' : '▼';
    td.append(arrow, text);
  } else {
    td.textContent = text;
  }
}

const dirty = new Set();
let renderScheduled = false;

function scheduleRender() {
  if (renderScheduled) return;
  renderScheduled = true;
  requestAnimationFrame(render);
}

// Many messages per frame coalesce: each row shows its latest tick once per animation frame.
function render() {
  renderScheduled = false;
  for (const row of dirty) {
    const d = row.pending;
    row.pending = null;
    if (!d) continue;
    row.tr.classList.remove('waiting', 'stale');
    const bid = num(d.bid);
    const ask = num(d.ask);
    const last = num(d.last) ?? num(d.price);
    setPrice(row, 'bid', bid, false);
    setPrice(row, 'ask', ask, false);
    setPrice(row, 'last', last, true);
    if (last !== null) {
      if (row.first === null) row.first = last;
      const change = last - row.first;
      const pct = row.first !== 0 ? (change / row.first) * 100 : 0;
      const places = Math.abs(row.first) >= 1 ? 2 : 4;
      row.chg.textContent = `${change >= 0 ? '+' : '−'}${Math.abs(change).toFixed(places)} (${pct >= 0 ? '+' : '−'}${Math.abs(pct).toFixed(2)}%)`;
      row.chg.classList.toggle('pos', change > 0);
      row.chg.classList.toggle('neg', change < 0);
    }
    const size = num(d.size);
    row.size.textContent = size === null ? '–' : size.toLocaleString('en-US');
    row.count.textContent = row.updates.toLocaleString('en-US');
  }
  dirty.clear();
  showTotals();
}

// ---------------------------------------------------------------------------------------------
// Statistics

let total = 0;
let lastLatency = null;
/** [time, total] samples over the last second, for the message rate. */
const samples = [[performance.now(), 0]];

function showTotals() {
  el.total.textContent = total.toLocaleString('en-US');
  el.total.dataset.value = String(total);
  if (lastLatency !== null) {
    el.latency.textContent = '';
    el.latency.append(String(lastLatency), Object.assign(document.createElement('small'), { textContent: ' ms' }));
    el.latency.dataset.value = String(lastLatency);
  }
}

function updateRate() {
  const now = performance.now();
  samples.push([now, total]);
  while (samples.length > 2 && now - samples[1][0] >= 1000) samples.shift();
  const [t0, n0] = samples[0];
  const rate = now > t0 ? ((total - n0) * 1000) / (now - t0) : 0;
  const shown = rate >= 100 ? Math.round(rate) : Math.round(rate * 10) / 10;
  el.rate.textContent = shown.toLocaleString('en-US');
  el.rate.dataset.value = String(shown);
  showTotals();
  const wall = Date.now();
  for (const row of rows.values()) {
    if (row.updatedAt && wall - row.updatedAt > STALE_MS) row.tr.classList.add('stale');
  }
  if (state === 'reconnecting' && retryAt) showRetry();
}

setInterval(updateRate, 250);

// ---------------------------------------------------------------------------------------------
// Event log

function log(text, level = 'info') {
  const li = document.createElement('li');
  li.className = level;
  const t = document.createElement('time');
  t.textContent = new Date().toLocaleTimeString('en-GB');
  li.append(t, text);
  el.log.prepend(li);
  while (el.log.children.length > 6) el.log.lastElementChild.remove();
}

// ---------------------------------------------------------------------------------------------
// Connection

const wsUrl = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/v1/ws`;

let state = 'connecting';
let ws = null;
let attempt = 0;
let retryTimer = null;
let retryAt = 0;
let openedAt = 0;
let lastFrameAt = 0;
let heartbeatMs = 30_000;
let requestId = 0;
let subscribeId = null;
let paused = false;
let connectedOnce = false;

function setState(next, detail = '') {
  state = next;
  el.state.dataset.state = next;
  el.state.textContent = next;
  el.detail.textContent = detail;
  document.body.dataset.state = next;
}

function showRetry() {
  const s = Math.max(0, (retryAt - Date.now()) / 1000);
  el.detail.textContent = `retry in ${s.toFixed(1)} s · attempt ${attempt}`;
}

function send(sock, frame) {
  if (sock.readyState === WebSocket.OPEN) sock.send(JSON.stringify(frame));
}

function connect() {
  clearTimeout(retryTimer);
  retryTimer = null;
  retryAt = 0;
  if (state !== 'reconnecting') setState('connecting', wsUrl);
  else el.detail.textContent = `connecting · attempt ${attempt}`;
  el.board.dataset.subscribed = 'false';
  let sock;
  try {
    sock = new WebSocket(wsUrl);
  } catch (err) {
    log(`cannot open ${wsUrl}: ${err.message}`, 'error');
    scheduleReconnect(null);
    return;
  }
  ws = sock;
  sock.onopen = () => {
    openedAt = Date.now();
    lastFrameAt = openedAt;
    subscribeId = ++requestId;
    send(sock, { op: 'subscribe', id: subscribeId, channels });
  };
  sock.onmessage = (ev) => {
    if (sock === ws) onFrame(sock, ev.data);
  };
  sock.onclose = (ev) => {
    if (sock === ws) onClose(ev);
  };
}

/** Drops a socket without waiting for its close event. */
function abandon(sock, code, reason) {
  sock.onopen = sock.onmessage = sock.onclose = sock.onerror = null;
  try {
    sock.close(code, reason);
  } catch {
    // already closing
  }
  if (ws === sock) {
    ws = null;
    el.board.dataset.subscribed = 'false';
  }
}

function onFrame(sock, text) {
  lastFrameAt = Date.now();
  let f;
  try {
    f = JSON.parse(text);
  } catch {
    return;
  }
  if (!f || typeof f !== 'object') return;
  switch (f.t) {
    case 'msg':
      onMessage(f);
      return;
    case 'welcome': {
      el.node.textContent = String(f.node ?? '–');
      el.region.textContent = String(f.region ?? '–');
      if (typeof f.heartbeat_s === 'number' && f.heartbeat_s > 0) heartbeatMs = f.heartbeat_s * 1000;
      setState('open', '');
      log(`${connectedOnce ? 'reconnected' : 'connected'} to ${f.node} (${f.region})`);
      connectedOnce = true;
      return;
    }
    case 'subscribed':
      if (f.id === subscribeId) {
        const n = Array.isArray(f.channels) ? f.channels.length : 0;
        el.board.dataset.subscribed = 'true';
        log(`subscribed to ${n} channel${n === 1 ? '' : 's'}`);
      }
      return;
    case 'error':
      log(`error ${f.code}: ${f.message}`, 'error');
      return;
    case 'reconnect': {
      const delay = Math.max(0, Number(f.delay_ms) || 0);
      log(`gateway says reconnect (${f.reason}) in ${delay} ms`, 'warn');
      abandon(sock, 1000, 'reconnecting');
      setState('reconnecting', '');
      scheduleReconnect(delay);
      return;
    }
    default:
      // pong, unsubscribed: nothing to show
  }
}

function onMessage(f) {
  total++;
  if (typeof f.ts === 'number') lastLatency = Date.now() - f.ts;
  const ch = typeof f.ch === 'string' ? f.ch : '';
  const row = rows.get(ch.slice(ch.indexOf(':') + 1));
  if (!row || !f.data || typeof f.data !== 'object') {
    scheduleRender();
    return;
  }
  row.pending = f.data;
  row.updates++;
  row.updatedAt = Date.now();
  dirty.add(row);
  scheduleRender();
}

function onClose(ev) {
  ws = null;
  el.board.dataset.subscribed = 'false';
  const wasOpen = openedAt !== 0;
  const why = ev.reason ? `${ev.code} ${ev.reason}` : String(ev.code);
  if (ev.code >= NO_RECONNECT_FROM) {
    log(`closed by the gateway (${why}); not reconnecting`, 'error');
    setState('closed', `closed: ${why}`);
    openedAt = 0;
    paused = true;
    el.toggle.textContent = 'Connect';
    return;
  }
  if (wasOpen || attempt === 0) log(`connection ${wasOpen ? 'lost' : 'failed'} (${why})`, 'warn');
  setState('reconnecting', '');
  scheduleReconnect(null);
}

/**
 * Plans the next attempt: after `delayMs` when the gateway named one, else exponential backoff
 * with full jitter (uniform in [0, min(max, base * 2^attempt)]).
 */
function scheduleReconnect(delayMs) {
  if (paused) return;
  if (openedAt !== 0 && Date.now() - openedAt >= STABLE_MS) attempt = 0;
  openedAt = 0;
  const delay = delayMs ?? Math.random() * Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
  attempt++;
  clearTimeout(retryTimer);
  retryAt = Date.now() + delay;
  retryTimer = setTimeout(connect, delay);
  showRetry();
}

// Liveness: ping when the line has been quiet for half a heartbeat; give up on a socket that has
// said nothing for a heartbeat and a half (a dead network often never fires close).
setInterval(() => {
  if (!ws || state !== 'open') return;
  const quiet = Date.now() - lastFrameAt;
  if (quiet > heartbeatMs * 1.5) {
    log('no frames from the gateway; reconnecting', 'warn');
    abandon(ws, 1000, 'heartbeat timeout');
    setState('reconnecting', '');
    scheduleReconnect(null);
  } else if (quiet > heartbeatMs / 2) {
    send(ws, { op: 'ping', id: ++requestId });
  }
}, 2_000);

// ---------------------------------------------------------------------------------------------
// Controls

el.toggle.addEventListener('click', () => {
  if (paused) {
    paused = false;
    attempt = 0;
    el.toggle.textContent = 'Disconnect';
    setState('connecting', '');
    connect();
  } else {
    paused = true;
    clearTimeout(retryTimer);
    retryTimer = null;
    retryAt = 0;
    if (ws) abandon(ws, 1000, 'closed by user');
    openedAt = 0;
    el.board.dataset.subscribed = 'false';
    el.toggle.textContent = 'Connect';
    setState('closed', 'disconnected');
    log('disconnected');
  }
});

el.form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const list = el.input.value
    .split(/[\s,]+/)
    .map((s) => s.trim().toUpperCase())
    .filter((s) => SYMBOL_RE.test(s));
  const url = new URL(location.href);
  if (list.length > 0) url.searchParams.set('symbols', list.join(','));
  else url.searchParams.delete('symbols');
  location.href = url.toString();
});

setState('connecting', wsUrl);
connect();
