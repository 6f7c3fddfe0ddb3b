/**
 * The producer library: publish events to Kafka in-process, without HTTP. The publisher's HTTP API
 * is a thin layer over it, and the market-data producer uses it directly.
 *
 * Writes use an idempotent producer with acks=all; a publish resolves only once Kafka has
 * acknowledged it, with the event's position. Concurrent publishes made in the same event-loop
 * turn are sent together in one request (per-partition order is the call order).
 */
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import { formatPosition, validateEvent, DEFAULT_MAX_EVENT_BYTES, FanoutError, type EventInput, type ValidEvent } from '@fanout/protocol';
import {
  checkKafkaAccess,
  checkTopics,
  createKafka,
  ensureTopics,
  kafkaSecurityFromEnv,
  PRODUCER_RETRY,
  TurnBatcher,
  partitionFor,
  toRecord,
  topicFor,
  keyFor,
  DEFAULT_TOPICS,
  type KafkaSecurity,
  type TopicSettings,
  type Topics,
} from '@fanout/kafka';
import type { Logger } from '@fanout/observability';

export interface PublishedEvent {
  id: string;
  channel: string;
  /** `<epoch>:<partition>:<offset>`, the same cursor clients see. */
  position: string;
  partition: number;
  offset: number;
}

export interface PublisherClientOptions {
  brokers: string[];
  logger: Logger;
  clientId?: string;
  topics?: Topics;
  /** Partition counts used when this client creates the topics. */
  broadcastPartitions?: number;
  userPartitions?: number;
  /** The stream epoch reported in positions (see docs/protocol.md). */
  epoch?: string;
  maxEventBytes?: number;
  /** Most records in one produce request. */
  maxBatch?: number;
  /** Most bytes (keys, values, headers) in one produce request; keep it under the broker's message.max.bytes (1 MiB by default). */
  maxBatchBytes?: number;
  /** Create missing topics on connect (default true). */
  createTopics?: boolean;
  /** TLS and SASL for Kafka; default: the FANOUT_KAFKA_* variables (see docs/kafka.md). */
  security?: KafkaSecurity;
  /** Replication, min.insync.replicas and retention of the topics it creates or checks; default: FANOUT_TOPIC_*. */
  topicSettings?: TopicSettings;
  /** How long connect() waits for an unreachable Kafka, in ms (default 60 000). */
  connectTimeoutMs?: number;
}

interface Pending {
  event: ValidEvent;
  publishedAt: number;
}

export class PublisherClient {
  private readonly kafka: Kafka;
  private readonly producer: Producer;
  private readonly topics: Topics;
  private readonly epoch: string;
  private readonly maxEventBytes: number;
  private partitions = new Map<string, number>();
  private readonly batcher: TurnBatcher<Pending, PublishedEvent>;
  private connected = false;
  private readonly security: KafkaSecurity;

  constructor(private readonly opts: PublisherClientOptions) {
    this.security = opts.security ?? kafkaSecurityFromEnv();
    this.kafka = createKafka({
      brokers: opts.brokers,
      clientId: opts.clientId ?? 'fanout-publisher',
      logger: opts.logger,
      security: this.security,
    });
    // Idempotent: retries after a lost acknowledgement cannot duplicate or reorder a record.
    // Retried each second through a failover (PRODUCER_RETRY); past it the publish is refused, never acknowledged.
    this.producer = this.kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: { ...PRODUCER_RETRY },
    });
    this.topics = opts.topics ?? DEFAULT_TOPICS;
    this.epoch = opts.epoch ?? '1';
    this.maxEventBytes = opts.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
    // Publishes made in the same event-loop turn go out together, cut by count and bytes.
    this.batcher = new TurnBatcher<Pending, PublishedEvent>({
      maxCount: opts.maxBatch ?? 1000,
      maxBytes: opts.maxBatchBytes ?? 512 * 1024,
      sizeOf: (p) => Buffer.byteLength(p.event.dataJson) + Buffer.byteLength(p.event.channel) * 2 + p.event.id.length + 128,
      send: (batch) => this.send(batch),
    });
  }

  /**
   * Checks access (a wrong password or an untrusted certificate rejects at once with a ConfigError
   * naming the variable), creates or checks the topics, and connects the producer.
   */
  async connect(): Promise<void> {
    await checkKafkaAccess({
      brokers: this.opts.brokers,
      security: this.security,
      ...(this.opts.connectTimeoutMs !== undefined ? { timeoutMs: this.opts.connectTimeoutMs } : {}),
    });
    if (this.opts.createTopics !== false) {
      this.partitions = await ensureTopics(
        this.kafka,
        [
          { topic: this.topics.broadcast, numPartitions: this.opts.broadcastPartitions ?? 6, events: true },
          { topic: this.topics.users, numPartitions: this.opts.userPartitions ?? 12, events: true },
        ],
        this.opts.logger,
        this.opts.topicSettings,
      );
    } else {
      this.partitions = await checkTopics(
        this.kafka,
        [
          { topic: this.topics.broadcast, events: true },
          { topic: this.topics.users, events: true },
        ],
        this.opts.logger,
        this.opts.topicSettings,
      );
      const missing = [this.topics.broadcast, this.topics.users].filter((t) => !this.partitions.has(t));
      if (missing.length > 0)
        throw new Error(
          `topics ${missing.join(', ')} do not exist and createTopics is false; create them (or let the publisher create them)`,
        );
    }
    await this.producer.connect();
    this.connected = true;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Validates one event and publishes it; bad input rejects with a FanoutError (nothing is written). */
  publish(input: EventInput): Promise<PublishedEvent> {
    try {
      return this.enqueue([validateEvent(input, this.maxEventBytes)])[0]!;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Validates every event first; if any is bad, rejects and writes none of them. */
  publishBatch(inputs: EventInput[]): Promise<PublishedEvent[]> {
    try {
      return Promise.all(this.enqueue(inputs.map((e, i) => validateEvent(e, this.maxEventBytes, i))));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Publishes events that are already validated (the HTTP layer validates before enqueueing). */
  publishValidated(events: ValidEvent[]): Promise<PublishedEvent[]> {
    return Promise.all(this.enqueue(events));
  }

  private enqueue(events: ValidEvent[]): Promise<PublishedEvent>[] {
    if (!this.connected) {
      return events.map(() =>
        Promise.reject(new FanoutError('not_ready', 'The publisher is not connected to Kafka; call connect() first.')),
      );
    }
    const now = Date.now();
    return events.map((event) => this.batcher.add({ event, publishedAt: now }));
  }

  /** One produce request; results in the batch's order. */
  private async send(batch: Pending[]): Promise<PublishedEvent[]> {
    // Group by topic and partition, keeping call order; the partition is computed here (Kafka's
    // default partitioner) so that each record's offset is known from the partition's base offset.
    const byTopic = new Map<string, Map<number, number[]>>();
    batch.forEach((p, index) => {
      const topic = topicFor(p.event.channel, this.topics);
      const n = this.partitions.get(topic) ?? 1;
      const partition = partitionFor(keyFor(p.event.channel), n);
      let parts = byTopic.get(topic);
      if (!parts) byTopic.set(topic, (parts = new Map()));
      let list = parts.get(partition);
      if (!list) parts.set(partition, (list = []));
      list.push(index);
    });
    try {
      const meta = await this.producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, parts]) => ({
          topic,
          messages: [...parts].flatMap(([partition, list]) =>
            list.map((i) => ({ ...toRecord(batch[i]!.event, batch[i]!.publishedAt), partition })),
          ),
        })),
      });
      const results: PublishedEvent[] = new Array(batch.length);
      for (const [topic, parts] of byTopic) {
        for (const [partition, list] of parts) {
          const m = meta.find((r) => r.topicName === topic && r.partition === partition);
          if (!m || m.baseOffset === undefined) throw new Error(`no acknowledgement for ${topic}/${partition}`);
          const base = Number(m.baseOffset);
          list.forEach((index, i) => {
            const { event } = batch[index]!;
            const offset = base + i;
            results[index] = {
              id: event.id,
              channel: event.channel,
              partition,
              offset,
              position: formatPosition({ epoch: this.epoch, partition, offset }),
            };
          });
        }
      }
      return results;
    } catch (err) {
      this.opts.logger.error({ err, events: batch.length }, 'kafka write failed');
      throw new FanoutError('kafka_unavailable', undefined, { cause: err });
    }
  }

  /** Waits (up to `timeoutMs`) for queued publishes to be acknowledged, then disconnects. */
  async disconnect(timeoutMs = 10_000): Promise<void> {
    await this.batcher.idle(timeoutMs);
    this.batcher.rejectQueued(new FanoutError('not_ready', 'The publisher is shutting down; this event was not written.'));
    this.connected = false;
    await this.producer.disconnect();
  }
}
