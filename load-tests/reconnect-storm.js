// Reconnect storm with resume: VUS x SOCKETS_PER_VU sockets subscribe to CHANNELS channels while a
// publisher posts continuously. STORMS times, every socket drops at the same moment, stays away
// DOWN_MS (plus up to JITTER_MS, as clients back off), reconnects and subscribes with
// {"positions": {<channel>: <last position seen>}}. The gateway must replay what each missed,
// exactly once and in order: no missing seq, no duplicate, no reset; and the storm of
// reconnects must be absorbed quickly (connect-to-subscribed time).
//
// The storm comes from the clients here; for the server-side kind, run this while a gateway drains
// (kubectl rollout restart statefulset/<release>-gateway-<region>): clients get reconnect frames.
import { WebSocket } from 'k6/websockets';
import { Counter, Rate, Trend } from 'k6/metrics';
import exec from 'k6/execution';
import { channels, gatewayFor, num, runId, wsUrl } from './lib/config.js';
import { publishSeq } from './lib/publish.js';
import { SeqTracker } from './lib/sequence.js';
import { summarize } from './lib/summary.js';

const VUS = num('VUS', 2);
const SOCKETS_PER_VU = num('SOCKETS_PER_VU', 20);
const CHANNELS = num('CHANNELS', 2);
const PUBLISH_RATE = num('PUBLISH_RATE', 20);
const WARMUP_S = num('WARMUP_S', 3);
const STORMS = num('STORMS', 2);
const STORM_EVERY_S = num('STORM_EVERY_S', 4); // first storm STORM_EVERY_S after the publisher starts
const DOWN_MS = num('DOWN_MS', 1000);
const JITTER_MS = num('JITTER_MS', 500);
const DRAIN_S = num('DRAIN_S', 3);
const RECONNECT_P95_MS = num('RECONNECT_P95_MS', 1000);

const PUBLISH_S = STORM_EVERY_S * (STORMS + 1);

const reconnectTime = new Trend('storm_reconnect_to_subscribed', true);
const received = new Counter('storm_messages_received');
const replayed = new Counter('storm_messages_replayed');
const missing = new Counter('storm_missing');
const duplicates = new Counter('storm_duplicates');
const resets = new Counter('storm_resets');
const gaps = new Counter('storm_gap_frames');
const errors = new Counter('storm_errors');
const reconnects = new Counter('storm_reconnects');
const resumed = new Rate('storm_resubscribed');

export const options = {
  scenarios: {
    clients: { executor: 'per-vu-iterations', exec: 'clients', vus: VUS, iterations: 1, maxDuration: `${WARMUP_S + PUBLISH_S + DRAIN_S + 30}s` },
    publisher: {
      executor: 'constant-arrival-rate', exec: 'publisher', rate: PUBLISH_RATE, timeUnit: '1s',
      duration: `${PUBLISH_S}s`, startTime: `${WARMUP_S}s`, preAllocatedVUs: 2, maxVUs: 10,
    },
  },
  thresholds: {
    storm_reconnect_to_subscribed: [`p(95)<${RECONNECT_P95_MS}`],
    storm_messages_replayed: ['count>0'],
    storm_missing: ['count==0'],
    storm_duplicates: ['count==0'],
    storm_resets: ['count==0'],
    storm_gap_frames: ['count==0'],
    storm_errors: ['count==0'],
    storm_resubscribed: ['rate==1'],
    publish_failures: ['count==0'],
  },
};

export function setup() {
  return { run: runId() };
}

export function publisher(data) {
  publishSeq(channels(data.run, 'storm', CHANNELS));
}

/** One client: a socket that it replaces at every storm, resuming from the positions it saw. */
function client(url, chs, endAt) {
  const seqs = new SeqTracker();
  const positions = {}; // channel -> last position received
  let stormsLeft = STORMS;
  let ws = null;
  let highBeforeDrop = {}; // channel -> highest seq received before the drop
  let resubscribeSentAt = 0;

  const connect = (resume) => {
    const started = Date.now();
    let subscribed = false;
    ws = new WebSocket(url);
    ws.onmessage = (e) => {
      const f = JSON.parse(e.data);
      if (f.t === 'msg') {
        received.add(1);
        positions[f.ch] = f.pos;
        const d = f.data || {};
        if (typeof d.seq !== 'number') return;
        if (!seqs.add(f.ch, d.seq)) duplicates.add(1);
        // Published while this client was away (before it subscribed again): came from the replay.
        else if (resume && d.seq > highBeforeDrop[f.ch] && d.sent < resubscribeSentAt) replayed.add(1);
      } else if (f.t === 'welcome') {
        const frame = { op: 'subscribe', id: 1, channels: chs };
        if (resume && Object.keys(positions).length > 0) frame.positions = { ...positions };
        resubscribeSentAt = Date.now();
        ws.send(JSON.stringify(frame));
      } else if (f.t === 'subscribed') {
        subscribed = true;
        if (resume) {
          reconnectTime.add(Date.now() - started);
          resumed.add(true);
        }
      } else if (f.t === 'reset') resets.add(1);
      else if (f.t === 'gap') gaps.add(1);
      else if (f.t === 'error') {
        errors.add(1);
        console.warn(`error frame: ${e.data}`);
      }
    };
    ws.onerror = (e) => {
      errors.add(1);
      console.warn(`socket error: ${e.error}`);
    };
    ws.onclose = () => {
      if (resume && !subscribed) resumed.add(false);
    };
  };

  connect(false);
  const storm = () => {
    if (stormsLeft-- <= 0) return;
    highBeforeDrop = {};
    for (const ch of chs) highBeforeDrop[ch] = seqs.last(ch);
    ws.close();
    reconnects.add(1);
    setTimeout(() => {
      connect(true);
      setTimeout(storm, STORM_EVERY_S * 1000);
    }, DOWN_MS + Math.floor(Math.random() * (JITTER_MS + 1)));
  };
  setTimeout(storm, (WARMUP_S + STORM_EVERY_S) * 1000);
  setTimeout(() => {
    ws.close();
    // Subscribed during the warm-up: every seq from 0 on is owed, across all the reconnects.
    missing.add(seqs.missing(0));
  }, endAt);
}

export function clients(data) {
  const chs = channels(data.run, 'storm', CHANNELS);
  const url = wsUrl(gatewayFor(exec.vu.idInTest));
  const endAt = (WARMUP_S + PUBLISH_S + DRAIN_S) * 1000;
  for (let i = 0; i < SOCKETS_PER_VU; i++) client(url, chs, endAt);
}

export const handleSummary = summarize('reconnect-storm', ['storm_reconnects', 'storm_reconnect_to_subscribed', 'storm_messages_received', 'storm_messages_replayed', 'storm_missing', 'storm_duplicates', 'storm_resets', 'published_events']);
