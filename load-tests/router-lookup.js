// Router lookups: RATE requests per second of GET /v1/route?user=<id>&region=<r> for USERS distinct
// users over REGIONS; every answer must name a gateway (ws_url) and come back fast.
//
//   k6 run -e RATE=2000 -e DURATION=60s -e ROUTER_URL=https://router.example.com -e REGIONS=eu,us load-tests/router-lookup.js
import http from 'k6/http';
import { check } from 'k6';
import { Counter, Rate } from 'k6/metrics';
import { list, num, ROUTER_URL, str } from './lib/config.js';
import { summarize } from './lib/summary.js';

const RATE = num('RATE', 200);
const DURATION = str('DURATION', '10s');
const USERS = num('USERS', 100000);
const REGIONS = list('REGIONS', 'eu,us');
const P95_MS = num('P95_MS', 50);
// 503 no_owner is the router's answer while a region's group rebalances (clients retry after a
// backoff); a few are expected when gateways come and go, none on a quiet cluster.
const MIN_OK_RATE = num('MIN_OK_RATE', 0.999);

const noOwner = new Counter('route_no_owner');
const routed = new Rate('route_ok');
http.setResponseCallback(http.expectedStatuses(200, 503));

export const options = {
  scenarios: {
    lookups: {
      executor: 'constant-arrival-rate', rate: RATE, timeUnit: '1s', duration: DURATION,
      // Enough VUs to hold the rate through a 250 ms stall without k6 dropping iterations.
      preAllocatedVUs: Math.max(10, Math.ceil(RATE / 4)), maxVUs: Math.max(50, RATE),
    },
  },
  thresholds: {
    'http_req_failed{name:route}': ['rate==0'],
    'http_req_duration{name:route}': [`p(95)<${P95_MS}`],
    route_ok: [`rate>=${MIN_OK_RATE}`],
    checks: ['rate==1'],
    // The arrival rate held: at most 1% of the planned requests not sent for want of a free VU.
    dropped_iterations: [`rate<${RATE * 0.01}`],
  },
};

export default function () {
  const user = `u${Math.floor(Math.random() * USERS)}`;
  const region = REGIONS[Math.floor(Math.random() * REGIONS.length)];
  const res = http.get(`${ROUTER_URL}/v1/route?user=${user}&region=${region}`, { tags: { name: 'route' } });
  if (res.status === 503) noOwner.add(1);
  routed.add(res.status === 200);
  check(res, {
    'route: 200, or 503 no_owner during a rebalance': (r) => r.status === 200 || (r.status === 503 && r.json('error.code') === 'no_owner'),
    'route: a 200 names a gateway': (r) => r.status !== 200 || /^wss?:\/\//.test(String(r.json('ws_url'))),
  });
}

export const handleSummary = summarize('router-lookup', ['http_reqs', 'http_req_duration', 'route_ok', 'route_no_owner', 'checks', 'dropped_iterations']);
