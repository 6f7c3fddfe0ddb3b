/**
 * The endpoint registry: the compacted `fanout.webhook-endpoints` topic (key = endpoint id, value
 * = the endpoint as JSON, a tombstone deletes), read whole by every dispatcher instance. Writes go
 * to Kafka first and return once this instance has read them back, so every instance converges on
 * the same registry without a database. Concurrent updates of one endpoint through two instances:
 * the last write Kafka appended wins.
 */
import type { Kafka, Producer } from 'kafkajs';
import { FanoutError, namespaceOf } from '@fanout/protocol';
import type { Logger } from '@fanout/observability';
import { CompactedTopicView } from '../kafka/compacted-view.js';
import { decodeEndpoint, type Endpoint } from './endpoint.js';

export class EndpointRegistry {
  private readonly endpoints = new Map<string, Endpoint>();
  /** Match indexes: exact channel, namespace wildcard, everything. */
  private readonly exact = new Map<string, Set<string>>();
  private readonly namespaces = new Map<string, Set<string>>();
  private readonly everything = new Set<string>();
  private readonly view: CompactedTopicView;
  private readonly listeners: ((id: string, ep: Endpoint | null, prev: Endpoint | null) => void)[] = [];
  private readonly log: Logger;

  constructor(
    private readonly o: {
      kafka: Kafka;
      producer: Producer;
      topic: string;
      groupPrefix: string;
      logger: Logger;
      onCrash?: (err: Error) => void;
    },
  ) {
    this.log = o.logger.child({ module: 'registry' });
    this.view = new CompactedTopicView({
      kafka: o.kafka,
      topic: o.topic,
      groupPrefix: o.groupPrefix,
      logger: this.log,
      apply: (key, value) => this.apply(key, value),
      ...(o.onCrash ? { onCrash: o.onCrash } : {}),
    });
  }

  async start(): Promise<void> {
    await this.view.start();
    await this.view.ready;
    this.log.info({ endpoints: this.endpoints.size }, 'endpoint registry loaded');
  }

  onChange(fn: (id: string, ep: Endpoint | null, prev: Endpoint | null) => void): void {
    this.listeners.push(fn);
  }

  private apply(key: string, value: Buffer | null): void {
    const prev = this.endpoints.get(key) ?? null;
    let next: Endpoint | null = null;
    if (value !== null) {
      next = decodeEndpoint(value);
      if (next === null || next.id !== key) {
        this.log.warn({ key: key.slice(0, 80) }, 'skipped a registry record that is not a valid endpoint');
        return;
      }
    }
    if (prev) this.unindex(prev);
    if (next) {
      this.endpoints.set(key, next);
      this.index(next);
    } else this.endpoints.delete(key);
    for (const fn of this.listeners) fn(key, next, prev);
  }

  private index(ep: Endpoint): void {
    for (const c of ep.channels) {
      if (c === '*') this.everything.add(ep.id);
      else if (c.endsWith(':*')) add(this.namespaces, c.slice(0, -2), ep.id);
      else add(this.exact, c, ep.id);
    }
  }

  private unindex(ep: Endpoint): void {
    for (const c of ep.channels) {
      if (c === '*') this.everything.delete(ep.id);
      else if (c.endsWith(':*')) remove(this.namespaces, c.slice(0, -2), ep.id);
      else remove(this.exact, c, ep.id);
    }
  }

  get size(): number {
    return this.endpoints.size;
  }

  get(id: string): Endpoint | undefined {
    return this.endpoints.get(id);
  }

  /** Every endpoint, ordered by id. */
  list(): Endpoint[] {
    return [...this.endpoints.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Enabled endpoints whose patterns match the channel, each once. */
  match(channel: string): Endpoint[] {
    const ids = new Set<string>(this.everything);
    for (const id of this.namespaces.get(namespaceOf(channel)) ?? []) ids.add(id);
    for (const id of this.exact.get(channel) ?? []) ids.add(id);
    const out: Endpoint[] = [];
    for (const id of ids) {
      const ep = this.endpoints.get(id);
      if (ep && !ep.disabled) out.push(ep);
    }
    return out;
  }

  /** Writes the endpoint and returns once this instance has read it back. */
  async put(ep: Endpoint): Promise<void> {
    await this.write(ep.id, JSON.stringify(ep));
  }

  /** Writes a tombstone for the endpoint and returns once this instance has read it back. */
  async remove(id: string): Promise<void> {
    await this.write(id, null);
  }

  private async write(key: string, value: string | null): Promise<void> {
    let meta;
    try {
      [meta] = await this.o.producer.send({ topic: this.o.topic, acks: -1, messages: [{ key, value }] });
    } catch (err) {
      throw new FanoutError('kafka_unavailable', 'Kafka did not acknowledge the registry write; nothing changed. Retry the call.', {
        cause: err,
      });
    }
    if (!meta || meta.baseOffset === undefined)
      throw new FanoutError('kafka_unavailable', 'Kafka did not acknowledge the registry write; retry the call.');
    await this.view.waitApplied(meta.partition, Number(meta.baseOffset));
  }

  async stop(): Promise<void> {
    await this.view.stop();
  }
}

function add(m: Map<string, Set<string>>, k: string, id: string): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(id);
}

function remove(m: Map<string, Set<string>>, k: string, id: string): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(id);
  if (s.size === 0) m.delete(k);
}
