// The publishing side of the fan-out scenarios: one batch per iteration, one event per channel, each
// carrying the iteration number (seq, the same on every channel) and the send time (ms), so readers
// can check that they got every seq and measure publish-to-receive latency on k6's own clock.
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import exec from 'k6/execution';
import { API_KEY, PUBLISHER_URL } from './config.js';

export const published = new Counter('published_events');
export const publishFailures = new Counter('publish_failures');

export function publishSeq(chs, extra = {}) {
  const seq = exec.scenario.iterationInTest;
  const sent = Date.now();
  const body = JSON.stringify({ events: chs.map((channel) => ({ channel, data: { seq, sent, ...extra } })) });
  const res = http.post(`${PUBLISHER_URL}/v1/publish/batch`, body, {
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    tags: { name: 'publish_batch' },
    timeout: '10s',
  });
  const ok = check(res, { 'publish: 200': (r) => r.status === 200 });
  if (ok) published.add(chs.length);
  else publishFailures.add(1);
  return ok;
}
