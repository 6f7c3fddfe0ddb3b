/**
 * Centrifugo for bench/peers.ts: the binary (built by scripts/install-tools.sh centrifugo), a
 * run's config derived from bench/centrifugo/config.json, the process, and the Kafka producer that
 * writes the records its Kafka consumer turns into publications (publication data mode: the
 * record's value is the publication data, the `centrifugo-channels` header names the channel).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import { createKafka, ensureTopics, PRODUCER_RETRY } from '@fanout/kafka';
import type { Logger } from '@fanout/observability';
import { log, ROOT, sleep, stopChild } from './processes.js';

/** The version scripts/install-tools.sh builds (its CENTRIFUGO_VERSION). */
export const CENTRIFUGO_VERSION = 'v6.9.1';
/** Kafka header naming the channels of a record in publication data mode (the config's channels_header). */
export const CHANNELS_HEADER = 'centrifugo-channels';

const BIN_DIR = process.env.FANOUT_TOOLS_BIN ?? join(homedir(), '.cache/fanout/bin');

/** The cached binary; runs the installer first when it is missing or of another version. */
export function centrifugoBinary(): string {
  const bin = join(BIN_DIR, 'centrifugo');
  const stamp = join(BIN_DIR, '.centrifugo.version');
  const current = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : '';
  if (!existsSync(bin) || current !== CENTRIFUGO_VERSION) {
    log(
      `centrifugo ${CENTRIFUGO_VERSION} not cached in ${BIN_DIR}: running scripts/install-tools.sh centrifugo (go install, ~2 min the first time)`,
    );
    // Bounded: a build that hangs (no Go proxy) must not hold the benchmark lock forever.
    execFileSync('bash', [join(ROOT, 'scripts/install-tools.sh'), 'centrifugo'], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, CENTRIFUGO_VERSION },
      timeout: 15 * 60_000,
    });
  }
  return bin;
}

export interface CentrifugoRun {
  port: number;
  brokers: string[];
  topic: string;
  group: string;
}

/** Writes the run's config: bench/centrifugo/config.json with this run's port, brokers, topic and group. */
export function writeConfig(run: CentrifugoRun, path: string): void {
  const cfg = JSON.parse(readFileSync(join(ROOT, 'bench/centrifugo/config.json'), 'utf8')) as {
    http_server: { port: number };
    consumers: { kafka: { brokers: string[]; topics: string[]; consumer_group: string } }[];
  };
  cfg.http_server.port = run.port;
  const kafka = cfg.consumers[0]!.kafka;
  kafka.brokers = run.brokers;
  kafka.topics = [run.topic];
  kafka.consumer_group = run.group;
  writeFileSync(path, JSON.stringify(cfg, null, 2));
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/**
 * Starts Centrifugo with a config file; its output goes to stderr as `[centrifugo] ...`.
 * `gomaxprocs`: GOMAXPROCS for the Go runtime (empty: Go's default, one per core, here 2).
 */
export function startCentrifugo(bin: string, configPath: string, gomaxprocs: string): ChildProcess {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (gomaxprocs) env.GOMAXPROCS = gomaxprocs;
  const child = spawn(bin, ['--config', configPath], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  const relay = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line.trim()) process.stderr.write(`[centrifugo] ${line}\n`);
  };
  child.stdout!.on('data', relay);
  child.stderr!.on('data', relay);
  return child;
}

export async function stopCentrifugo(child: ChildProcess): Promise<void> {
  await stopChild(child, 5000);
}

/** Threads of a process (/proc/<pid>/status), to show how many OS threads the Go runtime runs. */
export function threadCount(pid: number): number | null {
  try {
    const m = /Threads:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Writes Centrifugo's records: the same kind of producer as fanout's PublisherClient (kafkajs,
 * idempotent, acks=all, one request in flight), keyed by channel so that the channel stays on one
 * partition of a 6-partition topic, as fanout's broadcast topic.
 */
export class CentrifugoProducer {
  private readonly producer: Producer;
  private readonly kafka: Kafka;

  constructor(
    private readonly brokers: string[],
    readonly topic: string,
    private readonly logger: Logger,
  ) {
    this.kafka = createKafka({ brokers, clientId: 'fanout-bench-centrifugo', logger });
    this.producer = this.kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: { ...PRODUCER_RETRY },
    });
  }

  async connect(): Promise<void> {
    await ensureTopics(this.kafka, [{ topic: this.topic, numPartitions: 6, events: true }], this.logger);
    await this.producer.connect();
  }

  /** Writes the records (values are the publication data, JSON) in one request. */
  async publish(channel: string, values: string[]): Promise<void> {
    await this.producer.send({
      topic: this.topic,
      acks: -1,
      messages: values.map((value) => ({ key: channel, value, headers: { [CHANNELS_HEADER]: channel } })),
    });
  }

  async disconnect(): Promise<void> {
    await Promise.race([this.producer.disconnect(), sleep(5000)]).catch(() => {});
  }
}
