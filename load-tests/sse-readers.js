// SSE readers: VUS readers, each holding GET /v1/sse?channels=<one channel> for WINDOW_S seconds at a
// time and then reconnecting with Last-Event-ID (the id of the last event it got), while a
// publisher posts to the channels. Every reader must get every event exactly once across its
// reconnects: this is the resume path of EventSource.
//
// k6 has no streaming HTTP client: each window is a request that k6 ends at its timeout, keeping
// the body received so far (k6 logs a "Request Failed" warning per window; that is expected).
// Arrival times within a window are not visible, so latency is measured by the WebSocket and
// long-poll scenarios, not this one.
import http from 'k6/http';
import { check } from 'k6';
import { Counter, Rate } from 'k6/metrics';
import exec from 'k6/execution';
import { channels, gatewayFor, num, runId, TOKEN } from './lib/config.js';
import { publishSeq } from './lib/publish.js';
import { SeqTracker } from './lib/sequence.js';
import { summarize } from './lib/summary.js';

const VUS = num('VUS', 4);
const CHANNELS = num('CHANNELS', 2);
const PUBLISH_RATE = num('PUBLISH_RATE', 10);
const WARMUP_S = num('WARMUP_S', 2);
const PUBLISH_S = num('PUBLISH_S', 10);
const WINDOW_S = num('WINDOW_S', 3);

const received = new Counter('sse_messages_received');
const missing = new Counter('sse_missing');
const duplicates = new Counter('sse_duplicates');
const gaps = new Counter('sse_gap_frames');
const resets = new Counter('sse_resets');
const windows = new Counter('sse_windows');
const streamOk = new Rate('sse_stream_opened');

export const options = {
  scenarios: {
    readers: { executor: 'per-vu-iterations', exec: 'reader', vus: VUS, iterations: 1, maxDuration: `${WARMUP_S + PUBLISH_S + 3 * WINDOW_S + 30}s` },
    publisher: {
      executor: 'constant-arrival-rate', exec: 'publisher', rate: PUBLISH_RATE, timeUnit: '1s',
      duration: `${PUBLISH_S}s`, startTime: `${WARMUP_S}s`, preAllocatedVUs: 2, maxVUs: 10,
    },
  },
  thresholds: {
    sse_messages_received: ['count>0'],
    sse_missing: ['count==0'],
    sse_duplicates: ['count==0'],
    sse_gap_frames: ['count==0'],
    sse_resets: ['count==0'],
    sse_stream_opened: ['rate==1'],
    publish_failures: ['count==0'],
  },
};

export function setup() {
  return { run: runId() };
}

export function publisher(data) {
  publishSeq(channels(data.run, 'sse', CHANNELS));
}

/** Complete events (ended by a blank line) of an SSE body: [{id, data}]. A cut-off last event is left out. */
function parseEvents(body) {
  const out = [];
  const blocks = body.split('\n\n');
  blocks.pop(); // after the last separator: an incomplete event, or nothing
  for (const block of blocks) {
    let id = null;
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('id: ')) id = line.slice(4);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length > 0) out.push({ id, data: data.join('\n') });
  }
  return out;
}

export function reader(data) {
  const chs = channels(data.run, 'sse', CHANNELS);
  const channel = chs[(exec.vu.idInTest - 1) % chs.length];
  const base = gatewayFor(exec.vu.idInTest);
  const seqs = new SeqTracker();
  const until = Date.now() + (WARMUP_S + PUBLISH_S + 2 * WINDOW_S) * 1000;
  let lastId = '';
  while (Date.now() < until) {
    const url = `${base}/v1/sse?channels=${encodeURIComponent(channel)}${TOKEN ? `&token=${encodeURIComponent(TOKEN)}` : ''}`;
    const res = http.get(url, {
      headers: lastId ? { 'last-event-id': lastId } : {},
      timeout: `${WINDOW_S}s`,
      tags: { name: 'sse_window', kind: 'stream' },
    });
    windows.add(1);
    const body = typeof res.body === 'string' ? res.body : '';
    const opened = check(body, { 'sse: stream opened (retry: line)': (b) => b.startsWith('retry:') });
    streamOk.add(opened);
    if (!opened) {
      console.warn(`sse window without a stream: status ${res.status} ${res.error} ${body.slice(0, 200)}`);
      continue;
    }
    for (const ev of parseEvents(body)) {
      let f;
      try {
        f = JSON.parse(ev.data);
      } catch (_) {
        continue;
      }
      if (f.t === 'msg') {
        received.add(1);
        if (f.data && typeof f.data.seq === 'number' && !seqs.add(f.ch, f.data.seq)) duplicates.add(1);
        if (ev.id) lastId = ev.id;
      } else if (f.t === 'gap') gaps.add(1);
      else if (f.t === 'reset') resets.add(1);
    }
  }
  // The first window starts before the first publish, so seq 0 on is owed.
  missing.add(seqs.missing(0));
}

export const handleSummary = summarize('sse-readers', ['sse_messages_received', 'sse_windows', 'sse_missing', 'sse_duplicates', 'sse_resets', 'published_events', 'sse_stream_opened']);
