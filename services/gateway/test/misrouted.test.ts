/**
 * Users-topic records written by a producer whose partitioner is not murmur2 (kcat: librdkafka's
 * default consistent_random, CRC32), or to an explicit partition, reach their user exactly once, in
 * order, through the copy the reading gateway forwards to the key's partition (kafka/misrouted.ts).
 *
 * A region of two gateways and a router on the test broker; one client per user at the gateway
 * the router names; records produced with Debian's kcat. FANOUT_MISROUTED_RECORDS (default 1500)
 * and FANOUT_MISROUTED_USERS (100) set the size of the run.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import WebSocket from 'ws';
import { Kafka, type KafkaMessage } from 'kafkajs';
import { signConnectToken } from '@fanout/auth';
import { partitionFor, HEADER_FORWARDED_FROM, HEADER_FORWARDED_REGION, isForwardedCopy } from '@fanout/kafka';
import { startRouter, type RunningRouter } from '@fanout/router';
import { startGateway, type RunningGateway } from '../src/index.js';
import { chunks, classifyUserRecord, crc32, ForwardedCopies, forwardedCopy, guessPartitioner } from '../src/kafka/misrouted.js';
import { brokers, uniqueTopics, waitFor } from '../../../test/helpers.js';

const hasKcat = spawnSync('kcat', ['-V']).status === 0;
const PARTITIONS = 12;
const RECORDS = Number(process.env.FANOUT_MISROUTED_RECORDS ?? 1500);
const USERS = Number(process.env.FANOUT_MISROUTED_USERS ?? 100);
const PER_USER = Math.ceil(RECORDS / USERS);
const SECRET = 'misrouted-test-secret-0123456789-abcdef';

const msg = (partition: number, offset: number, key: string | null, headers: Record<string, string> = {}, value = '{}'): KafkaMessage =>
  ({
    key: key === null ? null : Buffer.from(key),
    value: Buffer.from(value),
    offset: String(offset),
    timestamp: '1700000000000',
    headers,
    attributes: 0,
    size: 0,
  }) as unknown as KafkaMessage;

describe('classifying users-topic records', () => {
  const right = (key: string) => partitionFor(key, PARTITIONS);
  const wrong = (key: string) => (right(key) + 1) % PARTITIONS;

  it('delivers a record on its key partition, forwards one elsewhere, drops what cannot be routed', () => {
    expect(classifyUserRecord(msg(right('42'), 5, '42', { 'fanout-channel': 'user:42' }), right('42'), PARTITIONS, 'eu')).toMatchObject({
      kind: 'event',
      origin: null,
      event: { channel: 'user:42' },
    });
    expect(classifyUserRecord(msg(wrong('42'), 5, '42'), wrong('42'), PARTITIONS, 'eu')).toEqual({
      kind: 'misrouted',
      target: right('42'),
      key: '42',
    });
    expect(classifyUserRecord(msg(0, 5, null, { 'fanout-channel': 'user:42' }), 0, PARTITIONS, 'eu')).toMatchObject({
      kind: 'dropped',
      reason: 'no_key',
    });
    expect(classifyUserRecord(msg(0, 5, 'not a user'), 0, PARTITIONS, 'eu')).toMatchObject({ kind: 'dropped', reason: 'invalid_key' });
    expect(classifyUserRecord(msg(right('42'), 5, '42', { 'fanout-channel': 'user:7' }), right('42'), PARTITIONS, 'eu')).toMatchObject({
      kind: 'dropped',
      reason: 'channel_mismatch',
    });
    expect(classifyUserRecord(msg(right('42'), 5, '42', { 'fanout-channel': 'news:x' }), right('42'), PARTITIONS, 'eu')).toMatchObject({
      kind: 'dropped',
      reason: 'channel_mismatch',
    });
  });

  it('delivers its own region’s copies with their origin, leaves other regions’ copies, never forwards a copy again', () => {
    const copy = { [HEADER_FORWARDED_FROM]: '3:17', [HEADER_FORWARDED_REGION]: 'eu' };
    expect(classifyUserRecord(msg(right('42'), 9, '42', copy), right('42'), PARTITIONS, 'eu')).toMatchObject({
      kind: 'event',
      origin: { partition: 3, offset: 17 },
    });
    expect(classifyUserRecord(msg(right('42'), 9, '42', copy), right('42'), PARTITIONS, 'us')).toEqual({ kind: 'other_region' });
    expect(classifyUserRecord(msg(wrong('42'), 9, '42', copy), wrong('42'), PARTITIONS, 'eu')).toMatchObject({
      kind: 'dropped',
      reason: 'invalid_copy',
    });
  });

  it('builds the copy: same key, value, timestamp and headers, the event id and time made explicit, the origin and region added', () => {
    const original = msg(4, 77, '42', { 'content-type': 'application/json', 'x-trace': 'abc' }, '{"a":1}');
    const c = forwardedCopy({ m: original, partition: 4, target: 9 }, 'eu');
    expect(c).toMatchObject({ key: Buffer.from('42'), value: Buffer.from('{"a":1}'), partition: 9, timestamp: '1700000000000' });
    expect(c.headers).toMatchObject({
      'content-type': 'application/json',
      'x-trace': 'abc',
      'fanout-id': '4-77',
      'fanout-ts': '1700000000000',
      [HEADER_FORWARDED_FROM]: '4:77',
      [HEADER_FORWARDED_REGION]: 'eu',
    });
    expect(isForwardedCopy(c as unknown as KafkaMessage)).toBe(true);
    const withId = forwardedCopy({ m: msg(4, 78, '42', { 'fanout-id': 'evt-1' }), partition: 4, target: 9 }, 'eu');
    expect(withId.headers!['fanout-id']).toBe('evt-1');
    const many = Array.from({ length: 1201 }, (_, i) => ({ m: msg(0, i, 'k'), partition: 0, target: 1 }));
    expect(chunks(many).map((c) => c.length)).toEqual([500, 500, 201]);
  });

  it('names the partitioner a misrouted record looks like (CRC32 for librdkafka defaults)', () => {
    const key = Buffer.from('alice');
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926); // the CRC-32 check value
    expect(guessPartitioner(key, crc32(key) % PARTITIONS, PARTITIONS)).toBe('crc32');
  });
});

describe('repeated forwarded copies', () => {
  it('delivers the first copy of each origin and drops repeats, whoever forwarded them and in whatever interleaving', () => {
    const c = new ForwardedCopies();
    c.reset(5, 100);
    // Forwarder A sends origins 10..12 of partition 3, then stops before committing; B starts at 11.
    expect(c.admit(5, 100, { partition: 3, offset: 10 })).toBe(true);
    expect(c.admit(5, 101, { partition: 3, offset: 11 })).toBe(true);
    expect(c.admit(5, 102, { partition: 7, offset: 11 })).toBe(true); // another source partition
    expect(c.admit(5, 103, { partition: 3, offset: 11 })).toBe(false);
    expect(c.admit(5, 104, { partition: 3, offset: 12 })).toBe(true);
    expect(c.admit(5, 105, { partition: 3, offset: 12 })).toBe(false);
    expect(c.admit(5, 106, { partition: 3, offset: 13 })).toBe(true);
    // Read again (a repeated fetch): the same decisions.
    expect(c.admit(5, 103, { partition: 3, offset: 11 })).toBe(false);
    expect(c.admit(5, 104, { partition: 3, offset: 12 })).toBe(true);
  });

  it('replays reuse the decisions, and keep the first copy of each origin before what was judged', () => {
    const c = new ForwardedCopies();
    c.reset(5, 100);
    c.admit(5, 100, { partition: 3, offset: 10 });
    c.admit(5, 101, { partition: 3, offset: 10 });
    const ev = (offset: number, origin?: { partition: number; offset: number }) => ({
      event: { channel: 'user:1', id: String(offset), publishedAt: 0, dataJson: '{}' },
      offset,
      ...(origin ? { origin } : {}),
    });
    const read = [
      ev(90, { partition: 3, offset: 4 }),
      ev(91),
      ev(95, { partition: 3, offset: 4 }),
      ev(100, { partition: 3, offset: 10 }),
      ev(101, { partition: 3, offset: 10 }),
    ];
    expect(c.filter(5, read, false).map((r) => r.offset)).toEqual([90, 91, 100]);
    // A warm-up (every record, in order) judges what is new to this gateway.
    const w = new ForwardedCopies();
    w.reset(5, 90);
    expect(w.filter(5, read, true).map((r) => r.offset)).toEqual([90, 91, 100]);
    expect(w.admit(5, 102, { partition: 3, offset: 10 })).toBe(false);
  });
});

/** One user's WebSocket client: every message of its channel, in arrival order. */
class UserClient {
  readonly seqs: number[] = [];
  /** The tags of the sentinel records received (see sentinels()), kept out of seqs, positions and ids. */
  readonly sentinels: string[] = [];
  readonly positions: string[] = [];
  readonly ids: string[] = [];
  private constructor(
    readonly user: string,
    readonly ws: WebSocket,
  ) {}

  static async open(user: string, wsUrl: string, position?: string): Promise<UserClient> {
    const token = await signConnectToken(SECRET, { sub: user });
    const ws = new WebSocket(`${wsUrl}?token=${token}`, { perMessageDeflate: false });
    const c = new UserClient(user, ws);
    const channel = `user:${user}`;
    await new Promise<void>((resolve, reject) => {
      ws.on('message', (d) => {
        const f = JSON.parse(d.toString());
        if (f.t === 'welcome')
          ws.send(
            JSON.stringify({ op: 'subscribe', id: 1, channels: [channel], ...(position ? { positions: { [channel]: position } } : {}) }),
          );
        else if (f.t === 'subscribed') resolve();
        else if (f.t === 'msg' && f.ch === channel && typeof f.data.sentinel === 'string') c.sentinels.push(f.data.sentinel);
        else if (f.t === 'msg' && f.ch === channel) {
          c.seqs.push(f.data.seq);
          c.positions.push(f.pos);
          c.ids.push(f.id);
        } else if (f.t === 'error' || f.t === 'reset') reject(new Error(`${user}: ${d.toString()}`));
      });
      ws.once('error', reject);
    });
    return c;
  }

  close(): void {
    this.ws.terminate();
  }
}

function kcat(args: string[], input: string): void {
  const r = spawnSync('kcat', ['-P', '-b', brokers().join(','), ...args], { input, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`kcat ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
}

/** Sum of a gateway counter over the region's gateways, for the labels given. */
async function counter(gateways: RunningGateway[], name: string, labels: Record<string, string>): Promise<number> {
  let sum = 0;
  for (const g of gateways) {
    const text = await (await fetch(g.url + '/metrics')).text();
    for (const line of text.split('\n')) {
      if (!line.startsWith(name + '{')) continue;
      if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return sum;
}

describe.skipIf(!hasKcat)('user records from a librdkafka producer (kcat, CRC32 partitioner)', () => {
  const t = uniqueTopics('misroute');
  const groupIdTemplate = `${t.userGroupId}-{region}`;
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void logs.push(JSON.parse(s) as Record<string, unknown>) });
  const gateways: RunningGateway[] = [];
  let router: RunningRouter;
  const users = Array.from({ length: USERS }, (_, i) => `kc-${i}`);
  const clients = new Map<string, UserClient>();
  const ownerOf = (partition: number) => gateways.find((g) => g.users.ownedPartitions.includes(partition))!;
  let sentinelCount = 0;

  /**
   * Writes a sentinel record for each user to the user's own partition (after everything written there
   * so far) and waits until each of `readers` (by default the users' clients) has it: anything those
   * clients were going to get from that partition before it, a duplicate included, has come by then.
   */
  async function sentinels(forUsers: string[], readers?: UserClient[]): Promise<void> {
    const tag = `s${++sentinelCount}`;
    const kafka = new Kafka({ brokers: brokers(), clientId: 'misrouted-sentinel', logLevel: 0 });
    const producer = kafka.producer();
    await producer.connect();
    try {
      await producer.send({
        topic: t.topicUsers,
        acks: -1,
        messages: forUsers.map((u) => ({
          key: u,
          value: JSON.stringify({ user: u, sentinel: tag }),
          partition: partitionFor(u, PARTITIONS),
        })),
      });
    } finally {
      await producer.disconnect();
    }
    for (const c of readers ?? forUsers.map((u) => clients.get(u)!))
      await waitFor(() => c.sentinels.includes(tag), `sentinel ${tag} at ${c.user}`, 30_000);
  }

  beforeAll(async () => {
    router = await startRouter({
      brokers: brokers(),
      port: 0,
      regions: ['eu'],
      groupIdTemplate,
      topicUsers: t.topicUsers,
      refreshMs: 200,
      infoRefreshMs: 500,
    });
    for (const node of ['gw-eu-0', 'gw-eu-1']) {
      gateways.push(
        await startGateway(
          {
            brokers: brokers(),
            port: 0,
            region: 'eu',
            node,
            servePage: false,
            tokenSecret: SECRET,
            userGroupId: groupIdTemplate.replace('{region}', 'eu'),
            groupRefreshMs: 300,
            topicBroadcast: t.topicBroadcast,
            topicUsers: t.topicUsers,
            // A small window: a resume from an early position is read from Kafka (the replay path).
            windowMaxMessages: 4,
          },
          logger.child({ node }),
        ),
      );
    }
    await waitFor(
      async () => {
        const s = (await (await fetch(`${router.url}/v1/status`)).json()) as {
          regions: { state: string; unowned_partitions: number; gateways: unknown[] }[];
        };
        const eu = s.regions[0]!;
        return (
          eu.state === 'Stable' &&
          eu.unowned_partitions === 0 &&
          eu.gateways.length === 2 &&
          gateways.reduce((n, g) => n + g.users.ownedPartitions.length, 0) === PARTITIONS &&
          gateways.every((g) => g.users.ownedPartitions.length > 0)
        );
      },
      'the region to settle',
      60_000,
    );
    await Promise.all(
      users.map(async (u) => {
        const r = await waitFor(async () => {
          const res = await fetch(`${router.url}/v1/route?user=${u}&region=eu`);
          return res.status === 200 && ((await res.json()) as { ws_url: string; partition: number });
        }, `a route for ${u}`);
        expect(r.partition).toBe(partitionFor(u, PARTITIONS));
        clients.set(u, await UserClient.open(u, r.ws_url));
      }),
    );
  }, 120_000);

  afterAll(async () => {
    for (const c of clients.values()) c.close();
    await Promise.all(gateways.map((g) => g.shutdown()));
    await router?.shutdown();
  });

  it(`delivers every record once, in order per user, at a position on the user's partition (${RECORDS} records from kcat)`, async () => {
    const lines: string[] = [];
    for (let seq = 1; seq <= PER_USER; seq++) for (const u of users) lines.push(`${u}:${JSON.stringify({ user: u, seq })}`);
    const crcOf = (u: string) => crc32(Buffer.from(u)) % PARTITIONS;
    const misroutedUsers = users.filter((u) => crcOf(u) !== partitionFor(u, PARTITIONS));
    const crossGateway = users.filter((u) => ownerOf(crcOf(u)) !== ownerOf(partitionFor(u, PARTITIONS)));
    const started = Date.now();
    kcat(['-t', t.topicUsers, '-K:', '-H', 'content-type=application/json', '-H', 'x-producer=kcat'], lines.join('\n') + '\n');
    await waitFor(() => users.every((u) => clients.get(u)!.seqs.length >= PER_USER), 'every record at its user', 120_000);
    const deliveredMs = Date.now() - started;
    await waitFor(
      async () =>
        (await counter(gateways, 'fanout_gateway_forwarded_copies_total', { outcome: 'delivered' })) >= misroutedUsers.length * PER_USER,
      'every forwarded copy delivered',
    );
    await sentinels(users); // a duplicate would show before it

    const expected = Array.from({ length: PER_USER }, (_, i) => i + 1);
    let lost = 0;
    let duplicates = 0;
    for (const u of users) {
      const c = clients.get(u)!;
      const seen = new Set(c.seqs);
      lost += expected.filter((s) => !seen.has(s)).length;
      duplicates += c.seqs.length - seen.size;
      expect(c.seqs, u).toEqual(expected);
      // Positions are on the user's partition, as the router and resume expect.
      expect(new Set(c.positions.map((p) => Number(p.split(':')[1]))), u).toEqual(new Set([partitionFor(u, PARTITIONS)]));
      // A forwarded event keeps the original's id: `<source partition>-<offset>` when kcat set none.
      if (misroutedUsers.includes(u)) for (const id of c.ids) expect(id, u).toMatch(new RegExp(`^${crcOf(u)}-\\d+$`));
      expect(new Set(c.ids).size).toBe(c.ids.length);
    }
    const misrouted = misroutedUsers.length * PER_USER;
    console.log(
      `[misrouted] ${users.length * PER_USER} records from kcat for ${users.length} users: ${misrouted} (${((100 * misrouted) / (users.length * PER_USER)).toFixed(1)} %) on another partition than their key's, ` +
        `${crossGateway.length * PER_USER} (${((100 * crossGateway.length) / users.length).toFixed(1)} %) read by the other gateway than the user's; lost ${lost}, duplicates ${duplicates}; all delivered in ${deliveredMs} ms`,
    );
    expect(misrouted).toBeGreaterThan(0);
    expect(crossGateway.length).toBeGreaterThan(0);
    expect(await counter(gateways, 'fanout_gateway_misrouted_records_total', { action: 'forwarded', reason: 'wrong_partition' })).toBe(
      misrouted,
    );
    expect(await counter(gateways, 'fanout_gateway_forwarded_copies_total', { outcome: 'delivered' })).toBe(misrouted);
    expect(await counter(gateways, 'fanout_gateway_forwarded_copies_total', { outcome: 'duplicate' })).toBe(0);

    // Logged once per pattern and gateway: CRC32, librdkafka's default, with the fix.
    const lines2 = logs.filter((l) => l.looks_like === 'crc32');
    for (const g of gateways) expect(lines2.filter((l) => l.node === g.config.node).length).toBeLessThanOrEqual(1);
    expect(lines2.length).toBeGreaterThanOrEqual(1);
    expect(String(lines2[0]!.msg)).toContain('partitioner=murmur2_random');
    expect(lines2[0]!.level).toBe(40);

    // The copies in Kafka: the original's headers kept, the origin and the region added.
    const sample = misroutedUsers[0]!;
    const dump = spawnSync(
      'kcat',
      [
        '-C',
        '-b',
        brokers().join(','),
        '-t',
        t.topicUsers,
        '-p',
        String(partitionFor(sample, PARTITIONS)),
        '-o',
        'beginning',
        '-e',
        '-q',
        '-f',
        '%k\t%h\n',
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    const copyHeaders = dump.stdout
      .split('\n')
      .filter((l) => l.startsWith(`${sample}\t`))[0]!
      .split('\t')[1]!;
    expect(copyHeaders).toContain('content-type=application/json');
    expect(copyHeaders).toContain('x-producer=kcat');
    expect(copyHeaders).toMatch(new RegExp(`fanout-forwarded-from=${crcOf(sample)}:\\d+`));
    expect(copyHeaders).toContain('fanout-forwarded-region=eu');
  }, 180_000);

  it('handles records written to an explicit wrong partition (-p) the same way, logged as their own pattern', async () => {
    const user = users.find((u) => ownerOf(partitionFor(u, PARTITIONS)) === gateways[0])!;
    const keyPartition = partitionFor(user, PARTITIONS);
    const key = Buffer.from(user);
    // A partition of the other gateway that no known hash of the key gives.
    const explicit = gateways[1]!.users.ownedPartitions.find(
      (p) => p !== keyPartition && guessPartitioner(key, p, PARTITIONS) === 'unknown',
    )!;
    const before = await counter(gateways, 'fanout_gateway_misrouted_records_total', { action: 'forwarded' });
    const c = clients.get(user)!;
    const had = c.seqs.length;
    const extra = Array.from({ length: 20 }, (_, i) => PER_USER + 1 + i);
    kcat(
      ['-t', t.topicUsers, '-p', String(explicit), '-K:'],
      extra.map((seq) => `${user}:${JSON.stringify({ user, seq })}`).join('\n') + '\n',
    );
    await waitFor(() => c.seqs.length >= had + extra.length, 'the explicitly partitioned records', 30_000);
    await sentinels([user]);
    expect(c.seqs.slice(had)).toEqual(extra);
    expect(await counter(gateways, 'fanout_gateway_misrouted_records_total', { action: 'forwarded' })).toBe(before + extra.length);
    const line = logs.filter((l) => l.looks_like === 'unknown' && l.users_partition === explicit);
    expect(line).toHaveLength(1);
    expect(line[0]!.key_partition).toBe(keyPartition);
  });

  it('drops, counts and logs records that cannot be routed: no key, a key that is no user id, a channel header for another user', async () => {
    const [a, b] = [users[1]!, users[2]!];
    const had = [clients.get(a)!.seqs.length, clients.get(b)!.seqs.length];
    kcat(['-t', t.topicUsers], `${JSON.stringify({ user: a, seq: -1 })}\n`);
    kcat(['-t', t.topicUsers, '-K:'], `not a user!:${JSON.stringify({ user: a, seq: -2 })}\n`);
    kcat(['-t', t.topicUsers, '-K:', '-H', `fanout-channel=user:${a}`], `${b}:${JSON.stringify({ user: b, seq: -3 })}\n`);
    for (const reason of ['no_key', 'invalid_key', 'channel_mismatch']) {
      await waitFor(
        async () => (await counter(gateways, 'fanout_gateway_misrouted_records_total', { action: 'dropped', reason })) === 1,
        `one record dropped for ${reason}`,
      );
      expect(logs.filter((l) => l.reason === reason)).toHaveLength(1);
    }
    await sentinels([a, b]);
    expect([clients.get(a)!.seqs.length, clients.get(b)!.seqs.length]).toEqual(had);
  });

  it('delivers a forward done twice once, ignores another region’s copy, and a resume from Kafka skips both', async () => {
    const user = users.find((u) => crc32(Buffer.from(u)) % PARTITIONS !== partitionFor(u, PARTITIONS) && u !== users[0])!;
    const p = partitionFor(user, PARTITIONS);
    const c = clients.get(user)!;
    const had = c.seqs.length;
    const last = c.seqs[had - 1]!;
    const kafka = new Kafka({ brokers: brokers(), clientId: 'misrouted-test', logLevel: 0 });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const copy = (seq: number, from: string, region: string) => ({
      key: user,
      value: JSON.stringify({ user, seq }),
      partition: p,
      headers: { 'fanout-id': `evt-${seq}`, [HEADER_FORWARDED_FROM]: from, [HEADER_FORWARDED_REGION]: region },
    });
    // As after a rebalance: the same original forwarded twice (and once by region us), then the next one.
    await producer.send({
      topic: t.topicUsers,
      acks: -1,
      messages: [
        copy(last + 1, '3:999999', 'eu'),
        copy(last + 1, '3:999999', 'eu'),
        copy(last + 50, '3:999999', 'us'),
        copy(last + 2, '3:1000000', 'eu'),
      ],
    });
    await producer.disconnect();
    await waitFor(() => c.seqs.length >= had + 2, 'the forwarded copies', 15_000);
    await sentinels([user]);
    expect(c.seqs.slice(had)).toEqual([last + 1, last + 2]);
    expect(await counter(gateways, 'fanout_gateway_forwarded_copies_total', { outcome: 'duplicate' })).toBe(1);
    expect(await counter(gateways, 'fanout_gateway_forwarded_copies_total', { outcome: 'other_region' })).toBe(1);

    // A client resuming from the first position: the window holds 4 messages, so the rest is read
    // from Kafka, where the repeat and the other region's copy are left out as on the live path.
    const owner = ownerOf(p);
    const resumesBefore = await counter([owner], 'fanout_gateway_resumes_total', { source: 'kafka' });
    const again = await UserClient.open(user, owner.wsUrl, c.positions[0]);
    await waitFor(() => again.seqs.length >= c.seqs.length - 1, 'the resumed client to catch up', 15_000);
    await sentinels([user], [again]);
    again.close();
    expect(again.seqs).toEqual(c.seqs.slice(1));
    expect(again.positions).toEqual(c.positions.slice(1));
    expect(await counter([owner], 'fanout_gateway_resumes_total', { source: 'kafka' })).toBe(resumesBefore + 1);
  });
});
