/**
 * A real single-node Apache Kafka (KRaft: one process is broker and controller), started from the
 * jars that Maven resolves from Maven Central, run with the machine's Java 17. No Docker.
 *
 * The jars are copied once into a cache folder (`$FANOUT_CACHE_DIR`, default
 * `~/.cache/fanout`), so only the first run downloads. Each start formats a fresh log directory
 * in a temporary folder, which is removed on stop.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

/** Apache Kafka version run locally; 3.9 is the last line kafkajs 2.2 is tested against. */
export const KAFKA_VERSION = '3.9.1';
const SCALA_VERSION = '2.13';

export class BrokerUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BrokerUnavailableError';
  }
}

const HOW_TO_POINT = 'Or point at an existing broker instead: KAFKA_BROKERS=host:9092 (comma-separated for several).';

export function cacheDir(): string {
  return process.env.FANOUT_CACHE_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'fanout');
}

function hasCommand(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.status === 0;
}

function javaMajorVersion(): number | null {
  const r = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const m = /version "(\d+)(?:\.(\d+))?/.exec(r.stderr + r.stdout);
  if (!m) return null;
  return m[1] === '1' ? Number(m[2]) : Number(m[1]);
}

/** Resolves the Kafka jars through Maven into the cache (once) and returns the folder of jars. */
export function ensureKafkaJars(log: (msg: string) => void = () => {}): string {
  const dir = join(cacheDir(), `kafka-${SCALA_VERSION}-${KAFKA_VERSION}`);
  const libs = join(dir, 'libs');
  if (existsSync(join(libs, `kafka_${SCALA_VERSION}-${KAFKA_VERSION}.jar`)) && existsSync(join(dir, '.complete'))) return libs;
  if (!hasCommand('mvn', ['-v'])) {
    throw new BrokerUnavailableError(`Maven (mvn) is not installed, so the Kafka ${KAFKA_VERSION} jars cannot be fetched from Maven Central. Install it (Debian: apt-get install maven). ${HOW_TO_POINT}`);
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'pom.xml'),
    `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.fanout</groupId><artifactId>kafka-runtime</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_${SCALA_VERSION}</artifactId><version>${KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
`,
  );
  log(`fetching Apache Kafka ${KAFKA_VERSION} jars from Maven Central into ${libs} (first run only)`);
  const r = spawnSync('mvn', ['-q', '-B', 'dependency:copy-dependencies', `-DoutputDirectory=${libs}`, '-DincludeScope=runtime'], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) {
    throw new BrokerUnavailableError(`mvn could not resolve the Kafka jars (exit ${r.status}):\n${(r.stdout + r.stderr).slice(-2000)}\n${HOW_TO_POINT}`);
  }
  writeFileSync(join(dir, '.complete'), new Date().toISOString());
  return libs;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Kafka's cluster ids are 16 random bytes, base64url without padding (22 characters). One that
 * starts with '-' reads as an option to the storage tool (it failed a test run that way, about one
 * start in 64), so such ids are drawn again, as Kafka's own Uuid.randomUuid does.
 */
function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

export interface LocalKafka {
  brokers: string[];
  pid: number;
  /** The broker's group.initial.rebalance.delay.ms. */
  groupInitialRebalanceDelayMs: number;
  stop(): Promise<void>;
}

export interface LocalKafkaOptions {
  /** Broker port on 127.0.0.1; 0 picks a free one. */
  port?: number;
  /** JVM heap, e.g. `512m`. */
  heap?: string;
  log?: (msg: string) => void;
  /** How long to wait for the broker to answer, in milliseconds. */
  startTimeoutMs?: number;
  /**
   * `group.initial.rebalance.delay.ms`: how long a consumer group's first join waits for more
   * members. The local default is 0 (quick tests); Kafka's own default, which production brokers
   * run with, is 3000 (GROUP_DELAY_KAFKA_DEFAULT_MS). Resume and rebalance paths must be measured
   * with the production value.
   */
  groupInitialRebalanceDelayMs?: number;
}

/** Kafka's default `group.initial.rebalance.delay.ms` (ms). */
export const GROUP_DELAY_KAFKA_DEFAULT_MS = 3000;

function waitForPort(port: number, child: ChildProcess, timeoutMs: number, logTail: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null) {
        reject(new BrokerUnavailableError(`Kafka exited during start-up (code ${child.exitCode}):\n${logTail()}`));
        return;
      }
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve();
      });
      s.on('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new BrokerUnavailableError(`Kafka did not listen on 127.0.0.1:${port} within ${timeoutMs} ms:\n${logTail()}`));
        else setTimeout(attempt, 200);
      });
    };
    attempt();
  });
}

export async function startLocalKafka(opts: LocalKafkaOptions = {}): Promise<LocalKafka> {
  const log = opts.log ?? (() => {});
  const major = javaMajorVersion();
  if (major === null) {
    throw new BrokerUnavailableError(`Java is not installed; a local Kafka needs Java 17 or newer (Debian: apt-get install openjdk-17-jre-headless). ${HOW_TO_POINT}`);
  }
  if (major < 17) throw new BrokerUnavailableError(`Java ${major} is too old; the local Kafka needs Java 17 or newer. ${HOW_TO_POINT}`);
  const libs = ensureKafkaJars(log);
  const port = opts.port || (await freePort());
  const controllerPort = await freePort();
  const work = mkdtempSync(join(tmpdir(), 'fanout-kafka-'));
  const dataDir = join(work, 'data');
  const props = join(work, 'server.properties');
  writeFileSync(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      `log.dirs=${dataDir}`,
      'num.partitions=1',
      'auto.create.topics.enable=false',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=4',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      // 0 by default: a single-node test cluster has nobody to wait for, so groups form at once.
      `group.initial.rebalance.delay.ms=${opts.groupInitialRebalanceDelayMs ?? 0}`,
      'log.retention.hours=24',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(work, 'log4j.properties'),
    ['log4j.rootLogger=WARN, stdout', 'log4j.appender.stdout=org.apache.log4j.ConsoleAppender', 'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout', 'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n', 'log4j.logger.kafka=WARN', 'log4j.logger.org.apache.kafka=WARN', ''].join('\n'),
  );
  const cp = `${libs}/*`;
  const jvm = [`-Xms${opts.heap ?? '512m'}`, `-Xmx${opts.heap ?? '512m'}`, '-XX:+UseG1GC', '-XX:TieredStopAtLevel=1', '-Djava.awt.headless=true', `-Dlog4j.configuration=file:${join(work, 'log4j.properties')}`];
  const fmt = spawnSync('java', [...jvm, '-cp', cp, 'kafka.tools.StorageTool', 'format', '-t', clusterId(), '-c', props], { encoding: 'utf8' });
  if (fmt.status !== 0) throw new BrokerUnavailableError(`formatting the Kafka log directory failed:\n${fmt.stdout}${fmt.stderr}`);

  // A watchdog shell owns the JVM: when this Node process dies, even by SIGKILL, the shell notices
  // within a second and kills Kafka, so no broker outlives the run that started it.
  const script = `java ${jvm.map((a) => `'${a}'`).join(' ')} -cp '${cp}' kafka.Kafka '${props}' & JPID=$!
trap 'kill $JPID 2>/dev/null; wait $JPID; exit 0' TERM INT
while kill -0 ${process.pid} 2>/dev/null && kill -0 $JPID 2>/dev/null; do sleep 1; done
kill $JPID 2>/dev/null; wait $JPID`;
  const child = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (b: Buffer) => {
    tail = (tail + b.toString()).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const cleanupOnExit = () => {
    try {
      child.kill('SIGTERM');
    } catch {
      /* already gone */
    }
  };
  process.once('exit', cleanupOnExit);

  let stopped: Promise<void> | null = null;
  const stop = () => {
    stopped ??= new Promise<void>((resolve) => {
      process.removeListener('exit', cleanupOnExit);
      const done = () => {
        clearTimeout(force);
        rmSync(work, { recursive: true, force: true });
        resolve();
      };
      if (child.exitCode !== null || child.signalCode !== null) return done();
      const force = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.once('exit', done);
      child.kill('SIGTERM');
    });
    return stopped;
  };
  try {
    log(`starting Apache Kafka ${KAFKA_VERSION} (KRaft) on 127.0.0.1:${port}`);
    await waitForPort(port, child, opts.startTimeoutMs ?? 60_000, () => tail);
  } catch (err) {
    await stop();
    throw err;
  }
  return { brokers: [`127.0.0.1:${port}`], pid: child.pid!, groupInitialRebalanceDelayMs: opts.groupInitialRebalanceDelayMs ?? 0, stop };
}

/** Lists the jars in the cache, for diagnostics. */
export function cachedJars(): string[] {
  const libs = join(cacheDir(), `kafka-${SCALA_VERSION}-${KAFKA_VERSION}`, 'libs');
  return existsSync(libs) ? readdirSync(libs) : [];
}
