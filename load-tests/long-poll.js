// Long-poll readers: VUS readers loop on GET /v1/poll?channel=<ch>&cursor=<cursor>&timeout=<s>, each
// answer carrying the messages after the cursor and the next cursor, while a publisher posts to the
// channels. Every reader must get every event exactly once; publish-to-receive latency is measured
// per message (a held poll is answered as soon as a message arrives).
import http from 'k6/http';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
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
const POLL_TIMEOUT_S = num('POLL_TIMEOUT_S', 5);
const P95_MS = num('P95_MS', 250);
const P99_MS = num('P99_MS', 1000);

const latency = new Trend('lp_publish_to_receive', true);
const received = new Counter('lp_messages_received');
const missing = new Counter('lp_missing');
const duplicates = new Counter('lp_duplicates');
const polls = new Counter('lp_polls');
const empty = new Counter('lp_empty_polls');

export const options = {
  scenarios: {
    pollers: { executor: 'per-vu-iterations', exec: 'poller', vus: VUS, iterations: 1, maxDuration: `${WARMUP_S + PUBLISH_S + POLL_TIMEOUT_S + 30}s` },
    publisher: {
      executor: 'constant-arrival-rate', exec: 'publisher', rate: PUBLISH_RATE, timeUnit: '1s',
      duration: `${PUBLISH_S}s`, startTime: `${WARMUP_S}s`, preAllocatedVUs: 2, maxVUs: 10,
    },
  },
  thresholds: {
    lp_publish_to_receive: [`p(95)<${P95_MS}`, `p(99)<${P99_MS}`],
    lp_messages_received: ['count>0'],
    lp_missing: ['count==0'],
    lp_duplicates: ['count==0'],
    'http_req_failed{name:poll}': ['rate==0'],
    publish_failures: ['count==0'],
  },
};

export function setup() {
  return { run: runId() };
}

export function publisher(data) {
  publishSeq(channels(data.run, 'lp', CHANNELS));
}

export function poller(data) {
  const chs = channels(data.run, 'lp', CHANNELS);
  const channel = chs[(exec.vu.idInTest - 1) % chs.length];
  const base = gatewayFor(exec.vu.idInTest);
  const seqs = new SeqTracker();
  const until = Date.now() + (WARMUP_S + PUBLISH_S + 1) * 1000;
  let cursor = '';
  while (Date.now() < until) {
    const q = `channel=${encodeURIComponent(channel)}&timeout=${POLL_TIMEOUT_S}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}${TOKEN ? `&token=${encodeURIComponent(TOKEN)}` : ''}`;
    const res = http.get(`${base}/v1/poll?${q}`, { timeout: `${POLL_TIMEOUT_S + 10}s`, tags: { name: 'poll' } });
    polls.add(1);
    if (!check(res, { 'poll: 200': (r) => r.status === 200 })) {
      console.warn(`poll: ${res.status} ${res.body}`);
      continue;
    }
    const body = res.json();
    const now = Date.now();
    if (body.messages.length === 0) empty.add(1);
    for (const m of body.messages) {
      received.add(1);
      if (m.data && typeof m.data.sent === 'number') latency.add(now - m.data.sent);
      if (m.data && typeof m.data.seq === 'number' && !seqs.add(m.ch, m.data.seq)) duplicates.add(1);
    }
    cursor = body.cursor || cursor;
  }
  missing.add(seqs.missing(0));
}

export const handleSummary = summarize('long-poll', ['lp_messages_received', 'lp_publish_to_receive', 'lp_polls', 'lp_empty_polls', 'lp_missing', 'lp_duplicates', 'published_events']);
