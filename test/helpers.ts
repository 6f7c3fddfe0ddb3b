/**
 * Small helpers over real things (after kafkajs' testHelpers): the run's broker, unique topic
 * names per test file, a WebSocket client that records frames, and waiting for conditions.
 */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import WebSocket from 'ws';
import type { ServerFrame } from '@fanout/protocol';

export function brokers(): string[] {
  return inject('kafkaBrokers');
}

/** A broker with Kafka's default group settings (a new group's first join waits 3 s), for resume and rebalance tests. */
export function productionGroupBrokers(): string[] {
  return inject('kafkaBrokersProductionGroups');
}

/** Topic names (and a user consumer group) unique to one test file, so files can run in parallel on one broker. */
export function uniqueTopics(prefix: string): { topicBroadcast: string; topicUsers: string; userGroupId: string } {
  const id = randomBytes(3).toString('hex');
  return { topicBroadcast: `t.${prefix}.${id}.broadcast`, topicUsers: `t.${prefix}.${id}.users`, userGroupId: `t.${prefix}.${id}.gw` };
}

export async function waitFor<T>(
  check: () => T | undefined | false | null | Promise<T | undefined | false | null>,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The data of a sentinel message. Published after whatever must not arrive, on the same channel (one
 * key, one partition, delivered in order), its arrival proves that nothing else came before it: a test
 * waits for the sentinel instead of sleeping and hoping that a wrong message would have shown by then.
 */
export const SENTINEL = { sentinel: true } as const;

export function isSentinel(data: unknown): boolean {
  return typeof data === 'object' && data !== null && (data as { sentinel?: unknown }).sentinel === true;
}

/** A WebSocket client that keeps every frame it receives, parsed. */
export class TestClient {
  readonly frames: ServerFrame[] = [];
  closeCode: number | null = null;
  closeReason = '';
  private seq = 0;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => this.frames.push(JSON.parse(d.toString()) as ServerFrame));
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
    });
  }

  static async connect(url: string, opts: { waitWelcome?: boolean } = {}): Promise<TestClient> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const c = new TestClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    if (opts.waitWelcome !== false) await waitFor(() => c.frames.find((f) => f.t === 'welcome'), 'welcome frame');
    return c;
  }

  messages(channel?: string): Extract<ServerFrame, { t: 'msg' }>[] {
    return this.frames.filter((f): f is Extract<ServerFrame, { t: 'msg' }> => f.t === 'msg' && (channel === undefined || f.ch === channel));
  }

  /** Waits for the sentinel on `channel` (see SENTINEL) and returns that channel's messages that came before it. */
  async beforeSentinel(channel: string, timeoutMs = 15_000): Promise<Extract<ServerFrame, { t: 'msg' }>[]> {
    const msgs = await waitFor(
      () => {
        const m = this.messages(channel);
        const i = m.findIndex((f) => isSentinel(f.data));
        return i >= 0 && m.slice(0, i);
      },
      `the sentinel on ${channel}`,
      timeoutMs,
    );
    return msgs;
  }

  errors(): Extract<ServerFrame, { t: 'error' }>[] {
    return this.frames.filter((f): f is Extract<ServerFrame, { t: 'error' }> => f.t === 'error');
  }

  /** Sends a frame with a fresh id and waits for the answer carrying that id. */
  async request(frame: Record<string, unknown>): Promise<ServerFrame> {
    const id = ++this.seq;
    this.ws.send(JSON.stringify({ ...frame, id }));
    return waitFor(() => this.frames.find((f) => 'id' in f && f.id === id && f.t !== 'msg'), `answer to ${JSON.stringify(frame)}`);
  }

  subscribe(...channels: string[]): Promise<ServerFrame> {
    return this.request({ op: 'subscribe', channels });
  }

  async closed(timeoutMs = 15_000): Promise<number> {
    return waitFor(() => this.closeCode ?? undefined, 'the socket to close', timeoutMs);
  }

  close(): void {
    this.ws.terminate();
  }
}
