/**
 * Micro-benchmark of the gateway's per-record ingest work without Kafka, for profiling changes to
 * the hot path quickly (bench:ingest is the measurement that counts). Records are "decoded" the
 * way kafkajs does it (per record: a message object, views of one response Buffer for key, value
 * and each header, offset and timestamp as strings), a fetch's worth at a time, then either only
 * counted (what the bare consumer does) or handed to fromRecord and the ingest handler into real
 * channel windows, nobody subscribed (what the gateway does).
 *
 *   npx tsx bench/ingest-micro.ts [records=1000000] [channels=1000] [perFetch=24000]
 */
import { recordEvent } from '@fanout/kafka';
import { ChannelWindows } from '../services/gateway/src/delivery/channel-window.js';
import { ingestCounts, recordHandler } from '../services/gateway/src/delivery/ingest.js';
import { OutgoingFactory } from '../services/gateway/src/delivery/outgoing.js';
import { QueuePolicies } from '../services/gateway/src/delivery/queue-policy.js';

const records = Number(process.argv[2] ?? 1_000_000);
const channels = Number(process.argv[3] ?? 1000);
const perFetch = Number(process.argv[4] ?? 24_000);
const factory = new OutgoingFactory('e1', new QueuePolicies([], 'drop'));
const windows = new ChannelWindows({ maxMessages: 1000, maxBytes: 1 << 20, maxAgeMs: 300_000, maxTotalBytes: 64 << 20 }, factory);
const stream = { windows, warmup: { isHistory: () => false, handled: () => {} } };
const handler = recordHandler('broadcast', {
  streams: { broadcast: stream, users: stream } as never,
  factory,
  hub: { wants: () => false } as never,
  pollers: { notify: () => {}, waiting: () => false },
  counts: ingestCounts(),
  observeLatency: () => {},
});

// One "fetch response": the bytes of perFetch records, back to back.
const parts: Buffer[] = [];
const spans: number[][] = [];
let at = 0;
const add = (s: string) => {
  const b = Buffer.from(s);
  parts.push(b);
  const span = [at, at + b.length];
  at += b.length;
  return span;
};
for (let i = 0; i < perFetch; i++) {
  const ch = `bench:c${i % channels}`;
  spans.push([
    ...add(ch),
    ...add(JSON.stringify({ seq: i, pad: 'x'.repeat(80) })),
    ...add(`01JX${String(i).padStart(22, '0')}`),
    ...add(ch),
    ...add(String(Date.now())),
    ...add('application/json'),
  ]);
}
const response = Buffer.concat(parts);
const sub = (a: number, b: number) => response.subarray(a, b);
function decode(base: number): unknown[] {
  const out = new Array(perFetch);
  for (let i = 0; i < perFetch; i++) {
    const s = spans[i]!;
    out[i] = {
      key: sub(s[0]!, s[1]!),
      value: sub(s[2]!, s[3]!),
      headers: {
        'fanout-id': sub(s[4]!, s[5]!),
        'fanout-channel': sub(s[6]!, s[7]!),
        'fanout-ts': sub(s[8]!, s[9]!),
        'content-type': sub(s[10]!, s[11]!),
      },
      offset: String(base + i),
      timestamp: String(1_700_000_000_000 + i),
      attributes: 0,
      size: 0,
      isControlRecord: false,
      batchContext: null,
    };
  }
  return out;
}

function run(mode: 'bare' | 'gateway'): number {
  const t0 = process.cpuUsage();
  let n = 0;
  for (let base = 0; base < records; base += perFetch) {
    const batch = decode(base);
    if (mode === 'bare') n += batch.length;
    else
      for (const m of batch as never[]) {
        const offset = Number((m as { offset: string }).offset);
        const e = recordEvent(m, offset % 6, offset, false);
        if (e) handler(e, offset % 6, offset);
        n++;
      }
  }
  const cpu = process.cpuUsage(t0);
  return (cpu.user + cpu.system) / n;
}
for (let round = 0; round < 3; round++) {
  const bare = run('bare');
  const gw = run('gateway');
  console.log(
    `round ${round}: bare ${bare.toFixed(3)} us/record, gateway ${gw.toFixed(3)} (own ${(gw - bare).toFixed(3)}); windows ${windows.messageCount} msgs ${(windows.bytes / 2 ** 20).toFixed(1)} MiB`,
  );
}
