// Publish throughput over HTTP: RATE batch requests per second, BATCH events each, to
// POST /v1/publish/batch with the API key, spread over CHANNELS channels. A publish is answered
// only after Kafka acknowledged it (acks=all), so the latency is the durable-write latency.
//
//   k6 run -e RATE=200 -e BATCH=100 -e DURATION=60s -e PUBLISHER_URL=https://publish.example.com -e API_KEY=... load-tests/publish-throughput.js
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import { API_KEY, channels, num, PUBLISHER_URL, runId, str } from './lib/config.js';
import { summarize } from './lib/summary.js';

const RATE = num('RATE', 20); // batch requests per second
const BATCH = num('BATCH', 50); // events per request (the publisher's limit is FANOUT_MAX_BATCH_EVENTS, 500)
const CHANNELS = num('CHANNELS', 50);
const PAYLOAD_BYTES = num('PAYLOAD_BYTES', 100);
const DURATION = str('DURATION', '10s');
const MIN_EVENTS_PER_S = num('MIN_EVENTS_PER_S', 0.8 * RATE * BATCH);
const P95_MS = num('P95_MS', 250);

const events = new Counter('publish_events_acked');
const rejected = new Counter('publish_batches_failed');

export const options = {
  scenarios: {
    publish: {
      executor: 'constant-arrival-rate', rate: RATE, timeUnit: '1s', duration: DURATION,
      // Enough VUs to hold the rate through a 500 ms stall without k6 dropping iterations.
      preAllocatedVUs: Math.max(10, Math.ceil(RATE / 2)), maxVUs: Math.max(50, 2 * RATE),
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{name:publish_batch}': [`p(95)<${P95_MS}`],
    publish_events_acked: [`rate>=${MIN_EVENTS_PER_S}`],
    publish_batches_failed: ['count==0'],
    // The arrival rate held: at most 1% of the planned requests not sent for want of a free VU.
    dropped_iterations: [`rate<${RATE * 0.01}`],
  },
};

export function setup() {
  return { run: runId() };
}

let n = 0;

export default function (data) {
  const chs = channels(data.run, 'pub', CHANNELS);
  const pad = 'x'.repeat(PAYLOAD_BYTES);
  const evs = [];
  for (let i = 0; i < BATCH; i++) evs.push({ channel: chs[(n + i) % chs.length], data: { i, pad } });
  n += BATCH;
  const res = http.post(`${PUBLISHER_URL}/v1/publish/batch`, JSON.stringify({ events: evs }), {
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    tags: { name: 'publish_batch' },
    timeout: '10s',
  });
  const ok = check(res, {
    'batch: 200': (r) => r.status === 200,
    'batch: a position per event': (r) => r.status === 200 && r.json('results.#') === BATCH,
  });
  if (ok) events.add(BATCH);
  else {
    rejected.add(1);
    console.warn(`publish: ${res.status} ${String(res.body).slice(0, 200)}`);
  }
}

export const handleSummary = summarize('publish-throughput', ['publish_events_acked', 'http_req_duration', 'http_reqs', 'http_req_failed', 'dropped_iterations']);
