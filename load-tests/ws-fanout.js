// WebSocket fan-out: VUS x SOCKETS_PER_VU sockets subscribe to CHANNELS broadcast channels; a
// publisher posts one event per channel PUBLISH_RATE times a second; every socket must receive
// every event (no missing seq, no gap frame), and publish-to-receive latency (k6's clock at the
// POST to k6's clock at the frame) stays under the thresholds.
//
//   k6 run load-tests/ws-fanout.js                                   (npm start on this machine)
//   k6 run -e VUS=50 -e SOCKETS_PER_VU=200 -e GATEWAY_URLS=https://gw-eu.example.com load-tests/ws-fanout.js
import { WebSocket } from 'k6/websockets';
import { Counter, Rate, Trend } from 'k6/metrics';
import exec from 'k6/execution';
import { channels, gatewayFor, num, runId, wsUrl } from './lib/config.js';
import { publishSeq } from './lib/publish.js';
import { SeqTracker } from './lib/sequence.js';
import { summarize } from './lib/summary.js';

const VUS = num('VUS', 2);
const SOCKETS_PER_VU = num('SOCKETS_PER_VU', 25);
const CHANNELS = num('CHANNELS', 4);
const PUBLISH_RATE = num('PUBLISH_RATE', 10); // batches per second (each: one event per channel)
const WARMUP_S = num('WARMUP_S', 3); // sockets connect and subscribe before the first publish
const PUBLISH_S = num('PUBLISH_S', 10);
const DRAIN_S = num('DRAIN_S', 3); // sockets stay open this long after the last publish
const P95_MS = num('P95_MS', 250);
const P99_MS = num('P99_MS', 1000);

const latency = new Trend('ws_publish_to_receive', true);
const received = new Counter('ws_messages_received');
const missing = new Counter('ws_missing');
const duplicates = new Counter('ws_duplicates');
const gaps = new Counter('ws_gap_frames');
const errors = new Counter('ws_errors');
const subscribed = new Rate('ws_subscribed');
const connectTime = new Trend('ws_connect_to_subscribed', true);

export const options = {
  scenarios: {
    sockets: { executor: 'per-vu-iterations', exec: 'sockets', vus: VUS, iterations: 1, maxDuration: `${WARMUP_S + PUBLISH_S + DRAIN_S + 30}s` },
    publisher: {
      executor: 'constant-arrival-rate', exec: 'publisher', rate: PUBLISH_RATE, timeUnit: '1s',
      duration: `${PUBLISH_S}s`, startTime: `${WARMUP_S}s`, preAllocatedVUs: 2, maxVUs: 10,
    },
  },
  thresholds: {
    ws_publish_to_receive: [`p(95)<${P95_MS}`, `p(99)<${P99_MS}`],
    ws_messages_received: ['count>0'],
    ws_missing: ['count==0'],
    ws_duplicates: ['count==0'],
    ws_gap_frames: ['count==0'],
    ws_errors: ['count==0'],
    ws_subscribed: ['rate==1'],
    publish_failures: ['count==0'],
    'http_req_duration{name:publish_batch}': ['p(95)<1000'],
  },
};

export function setup() {
  return { run: runId() };
}

export function publisher(data) {
  publishSeq(channels(data.run, 'ws', CHANNELS));
}

export function sockets(data) {
  const chs = channels(data.run, 'ws', CHANNELS);
  const url = wsUrl(gatewayFor(exec.vu.idInTest));
  const closeAfterMs = (WARMUP_S + PUBLISH_S + DRAIN_S) * 1000;
  for (let i = 0; i < SOCKETS_PER_VU; i++) {
    const seqs = new SeqTracker();
    const opened = Date.now();
    let ok = false;
    const ws = new WebSocket(url);
    ws.onmessage = (e) => {
      const f = JSON.parse(e.data);
      if (f.t === 'msg') {
        received.add(1);
        if (f.data && typeof f.data.sent === 'number') latency.add(Date.now() - f.data.sent);
        if (f.data && typeof f.data.seq === 'number') seqs.add(f.ch, f.data.seq);
      } else if (f.t === 'welcome') {
        ws.send(JSON.stringify({ op: 'subscribe', id: 1, channels: chs }));
      } else if (f.t === 'subscribed') {
        ok = true;
        connectTime.add(Date.now() - opened);
      } else if (f.t === 'gap') {
        gaps.add(1);
      } else if (f.t === 'error') {
        errors.add(1);
        console.warn(`error frame: ${e.data}`);
      }
    };
    ws.onerror = (e) => {
      errors.add(1);
      console.warn(`socket error: ${e.error}`);
    };
    ws.onclose = () => {
      subscribed.add(ok);
      // Subscribed during the warm-up: every seq from 0 on is owed.
      if (ok) {
        missing.add(seqs.missing(0));
        duplicates.add(seqs.duplicates);
      }
    };
    setTimeout(() => ws.close(), closeAfterMs);
  }
}

export const handleSummary = summarize('ws-fanout', ['ws_messages_received', 'ws_publish_to_receive', 'ws_connect_to_subscribed', 'ws_missing', 'ws_gap_frames', 'published_events', 'ws_subscribed']);
