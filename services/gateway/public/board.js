// The live ticks board: subscribed to prices:<SYMBOL> for a few symbols (?symbols=AAPL,MSFT
// overrides the default) on this gateway, showing bid/ask/last as they arrive.
//
// The connection is the client SDK's (/fanout-client.js, built from packages/client by the
// gateway): WebSocket with SSE where WebSockets are blocked, reconnects with exponential backoff
// and full jitter, waits exactly the delay of the gateway's reconnect frame (drain on deploy),
// resubscribes from its positions and drops duplicates. Plain browser JS, no build step.
import { FanoutClient } from '/fanout-client.js';

const DEFAULT_SYMBOLS = ['AAPL', 'MSFT', 'GOOG', 'AMZN', 'NVDA', 'TSLA'];
const SYMBOL_RE = /^[A-Za-z0-9._=@-]{1,200}$/;
const MAX_SYMBOLS = 100; // channels per subscribe frame
/** A row with no update for this long is dimmed. */
const STALE_MS = 15_000;

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

const client = new FanoutClient({ url: location.origin, channels });

let state = 'connecting';
let attempt = 0;
let retryAt = 0;
let paused = false;
let connectedOnce = false;
/** The last disconnect followed a reconnect frame, which was logged already. */
let asked = false;

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

client.on('state', (ev) => {
  attempt = ev.attempt;
  retryAt = 0;
  if (ev.state !== 'open') el.board.dataset.subscribed = 'false';
  switch (ev.state) {
    case 'open':
      setState('open', ev.transport === 'sse' ? 'SSE' : '');
      return;
    case 'reconnecting':
      setState('reconnecting', '');
      retryAt = ev.retryAt ?? 0;
      if (retryAt) showRetry();
      return;
    case 'closed': {
      paused = true;
      el.toggle.textContent = 'Connect';
      setState('closed', ev.code ? `closed: ${ev.code}${ev.reason ? ` ${ev.reason}` : ''}` : 'disconnected');
      return;
    }
    default:
      setState('connecting', location.host);
  }
});

let lastTransport = 'websocket';
client.on('attempt', (a) => {
  if (a.transport !== lastTransport) log(a.transport === 'sse' ? 'WebSocket does not get through; trying SSE' : 'trying WebSocket again', 'warn');
  lastTransport = a.transport;
  if (state === 'reconnecting') el.detail.textContent = `connecting · attempt ${attempt}`;
});

client.on('welcome', (w) => {
  el.node.textContent = w.node || '–';
  el.region.textContent = w.region || '–';
  log(`${connectedOnce ? 'reconnected' : 'connected'} to ${w.node} (${w.region})${w.transport === 'sse' ? ' over SSE' : ''}`);
  connectedOnce = true;
});

client.on('subscribed', (ev) => {
  const n = ev.channels.length;
  el.board.dataset.subscribed = 'true';
  log(`subscribed to ${n} channel${n === 1 ? '' : 's'}${ev.resumed.length ? `, resuming ${ev.resumed.length}` : ''}`);
});

client.on('message', onMessage);

client.on('error', (e) => log(`error ${e.code}: ${e.message}`, 'error'));

client.on('reconnect', (r) => {
  asked = true;
  log(`gateway says reconnect (${r.reason}) in ${r.delayMs} ms`, 'warn');
});

client.on('disconnect', (d) => {
  const why = d.reason ? `${d.code} ${d.reason}` : String(d.code);
  if (!d.willReconnect) log(`closed by the gateway (${why}); not reconnecting`, 'error');
  else if (asked) asked = false;
  else if (d.opened || attempt === 0) log(`connection ${d.opened ? 'lost' : 'failed'} (${why})`, 'warn');
});

client.on('reset', (r) => log(`${r.channel}: reset (${r.reason}); live from here`, 'warn'));
client.on('gap', (g) => log(`${g.channel}: ${g.count} update${g.count === 1 ? '' : 's'} skipped`, 'warn'));

function onMessage(m) {
  total++;
  if (m.ts > 0) lastLatency = Date.now() - m.ts;
  const row = rows.get(m.channel.slice(m.channel.indexOf(':') + 1));
  if (!row || !m.data || typeof m.data !== 'object') {
    scheduleRender();
    return;
  }
  row.pending = m.data;
  row.updates++;
  row.updatedAt = Date.now();
  dirty.add(row);
  scheduleRender();
}

// ---------------------------------------------------------------------------------------------
// Controls

el.toggle.addEventListener('click', () => {
  if (paused) {
    paused = false;
    el.toggle.textContent = 'Disconnect';
    client.connect();
  } else {
    paused = true;
    el.toggle.textContent = 'Connect';
    client.close();
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

setState('connecting', location.host);
client.connect();
