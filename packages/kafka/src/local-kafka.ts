/**
 * A real Apache Kafka on this machine (KRaft: every process is broker and controller), started
 * from the jars that Maven resolves from Maven Central, run with the machine's Java 17. No Docker.
 * One node by default (the quickest start); three for replication and failover tests, each with
 * its own ports on 127.0.0.1 and started in parallel. Optionally the client listener is SASL_SSL
 * with certificates and a user made for the run (local-cluster-tls.ts).
 *
 * The jars are copied once into a cache folder (`$FANOUT_CACHE_DIR`, default
 * `~/.cache/fanout`), so only the first run downloads. Each start formats fresh log directories
 * in a temporary work dir, which is removed on stop.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import {
  generateLocalSasl,
  generateLocalTls,
  saslSslListenerProperties,
  scramFormatArgs,
  type LocalClusterSasl,
  type LocalClusterTls,
  type LocalClusterTlsFiles,
} from './local-cluster-tls.js';

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
    throw new BrokerUnavailableError(
      `Maven (mvn) is not installed, so the Kafka ${KAFKA_VERSION} jars cannot be fetched from Maven Central. Install it (Debian: apt-get install maven). ${HOW_TO_POINT}`,
    );
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
  const r = spawnSync('mvn', ['-q', '-B', 'dependency:copy-dependencies', `-DoutputDirectory=${libs}`, '-DincludeScope=runtime'], {
    cwd: dir,
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    throw new BrokerUnavailableError(
      `mvn could not resolve the Kafka jars (exit ${r.status}):\n${(r.stdout + r.stderr).slice(-2000)}\n${HOW_TO_POINT}`,
    );
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

export type LocalKafkaSecurity = 'plaintext' | 'sasl_ssl';

/** One process of a local cluster (broker and controller in one JVM). */
export interface LocalKafkaNode {
  nodeId: number;
  /** Client port on 127.0.0.1. */
  port: number;
  /** Whether this node's JVM is running. */
  alive(): boolean;
  /** Sends `signal` (default SIGKILL) to this node's JVM, not its watchdog, and resolves once the JVM is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the JVM again with the same port, config and data (no re-format); resolves once it listens. */
  start(): Promise<void>;
}

export interface LocalKafka {
  brokers: string[];
  /** The watchdog shell of the first node's current JVM. */
  readonly pid: number;
  /** The brokers' group.initial.rebalance.delay.ms. */
  groupInitialRebalanceDelayMs: number;
  security: LocalKafkaSecurity;
  /** Configs, data, certificates and the password file; removed by stop(). */
  workDir: string;
  /**
   * What a client of this cluster needs: KAFKA_BROKERS, FANOUT_TOPIC_REPLICATION_FACTOR,
   * FANOUT_TOPIC_MIN_INSYNC_REPLICAS and, for sasl_ssl, the FANOUT_KAFKA_* security variables
   * (SCRAM-SHA-512 as user `fanout`, the password from a file, the cluster's CA).
   */
  clientEnv: Record<string, string>;
  /** sasl_ssl only: the CA, a client certificate for mutual TLS and an unrelated CA. */
  tls?: LocalClusterTls;
  /**
   * sasl_ssl only: the user valid for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512. OAUTHBEARER is
   * UNSECURED (`oauthBearer: 'unsecured'`): any unsigned JWT with a `sub` is accepted; local use only.
   */
  sasl?: LocalClusterSasl & { oauthBearer: 'unsecured' };
  nodes: LocalKafkaNode[];
  /** Stops every node and removes the work dir. */
  stop(): Promise<void>;
}

export interface LocalKafkaOptions {
  /** Number of nodes, each broker and controller: 1 (the default, quickest) or 3. */
  brokers?: 1 | 3;
  /**
   * `plaintext` (default) or `sasl_ssl`: the client listener speaks TLS with SASL PLAIN,
   * SCRAM-SHA-256/512 and (unsecured) OAUTHBEARER; see local-cluster-tls.ts.
   */
  security?: LocalKafkaSecurity;
  /** Client port of the first node on 127.0.0.1; 0 picks a free one. The others always get free ports. */
  port?: number;
  /** JVM heap per node, e.g. `512m` (default 512m for one node, 384m each for three). */
  heap?: string;
  log?: (msg: string) => void;
  /** How long to wait for the cluster (and for a restarted node) to answer, in milliseconds. */
  startTimeoutMs?: number;
  /**
   * `group.initial.rebalance.delay.ms`: how long a consumer group's first join waits for more
   * members. The local default is 0 (quick tests); Kafka's own default, which production brokers
   * run with, is 3000 (GROUP_DELAY_KAFKA_DEFAULT_MS). Resume and rebalance paths must be measured
   * with the production value.
   */
  groupInitialRebalanceDelayMs?: number;
  /**
   * `broker.session.timeout.ms` of a three-node cluster: how long a dead broker keeps its
   * partitions' leadership before the controller fences it. Default 3000 (quick local failovers);
   * Kafka's own default, which production clusters run with, is KAFKA_BROKER_SESSION_TIMEOUT_MS (9000).
   * A single node keeps Kafka's default unless this is given: a node restarted after SIGKILL is
   * refused until its old registration's session has expired, so this also bounds its restart.
   */
  brokerSessionTimeoutMs?: number;
  /**
   * Plaintext, one node: a second client listener on `port` that advertises `advertisedPort`, so
   * that a client bootstrapping there reaches the broker only through whatever listens on
   * `advertisedPort` (a proxy a test controls).
   */
  proxiedListener?: { port: number; advertisedPort: number };
}

/** Kafka's default `group.initial.rebalance.delay.ms` (ms). */
export const GROUP_DELAY_KAFKA_DEFAULT_MS = 3000;

/** The listener clients use when security is sasl_ssl; brokers talk to each other on INTERNAL. */
const SASL_LISTENER = 'SASL_SSL';

interface NodeSpec {
  id: number;
  port: number;
  controllerPort: number;
  /** sasl_ssl only: the PLAINTEXT listener the brokers replicate over. */
  internalPort?: number;
  dir: string;
  props: string;
}

interface ClusterSpec {
  work: string;
  /** broker.session.timeout.ms of a multi-node cluster (of a single node too when given). */
  sessionTimeoutMs: number;
  sessionTimeoutGiven: boolean;
  proxied?: { port: number; advertisedPort: number };
  security: LocalKafkaSecurity;
  nodes: NodeSpec[];
  groupDelayMs: number;
  tls?: LocalClusterTlsFiles;
  sasl?: LocalClusterSasl;
}

function requireJava(): void {
  const major = javaMajorVersion();
  if (major === null) {
    throw new BrokerUnavailableError(
      `Java is not installed; a local Kafka needs Java 17 or newer (Debian: apt-get install openjdk-17-jre-headless). ${HOW_TO_POINT}`,
    );
  }
  if (major < 17) throw new BrokerUnavailableError(`Java ${major} is too old; the local Kafka needs Java 17 or newer. ${HOW_TO_POINT}`);
}

/** `count` distinct free ports, `first` (when not 0) leading; freePort may hand out a port twice. */
async function pickPorts(count: number, first: number): Promise<number[]> {
  const ports = first ? [first] : [];
  while (ports.length < count) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  return ports;
}

/** Replication of topics and of Kafka's internal topics: every node, and one may be down. */
function replication(nodes: number): { factor: number; minIsr: number } {
  return nodes >= 3 ? { factor: nodes, minIsr: nodes - 1 } : { factor: 1, minIsr: 1 };
}

function listenerLines(spec: ClusterSpec, node: NodeSpec): string[] {
  const ctl = `CONTROLLER://127.0.0.1:${node.controllerPort}`;
  if (spec.security === 'plaintext') {
    // A second client listener that advertises another port, for a client that must reach the
    // broker only through a proxy (the fault suite cuts one gateway's network there).
    const proxied = spec.proxied && node.id === 1 ? spec.proxied : null;
    return [
      `listeners=PLAINTEXT://127.0.0.1:${node.port},${ctl}${proxied ? `,PROXIED://127.0.0.1:${proxied.port}` : ''}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${node.port}${proxied ? `,PROXIED://127.0.0.1:${proxied.advertisedPort}` : ''}`,
      'inter.broker.listener.name=PLAINTEXT',
      `listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT${proxied ? ',PROXIED:PLAINTEXT' : ''}`,
    ];
  }
  // Only the client-facing listener is SASL_SSL. Inter-broker (INTERNAL) and controller traffic
  // stays PLAINTEXT, bound to 127.0.0.1 so nothing off this machine reaches it: the point is to
  // test clients against TLS and SASL, not to secure a throwaway cluster from itself.
  const internal = `INTERNAL://127.0.0.1:${node.internalPort}`;
  return [
    `listeners=${SASL_LISTENER}://127.0.0.1:${node.port},${internal},${ctl}`,
    `advertised.listeners=${SASL_LISTENER}://127.0.0.1:${node.port},${internal}`,
    'inter.broker.listener.name=INTERNAL',
    `listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,${SASL_LISTENER}:SASL_SSL`,
    ...saslSslListenerProperties(SASL_LISTENER, spec.tls!, spec.sasl!),
  ];
}

/**
 * A node that dies without a clean shutdown keeps its partitions' leadership, and its id, until
 * the controller fences it at broker.session.timeout.ms (9 s by default); a restarted node is
 * refused (DUPLICATE_BROKER_REGISTRATION) until then, and writes to those partitions wait as
 * long. A test cluster on one machine can afford a quicker verdict (3 s unless
 * `brokerSessionTimeoutMs` says otherwise; Kafka's own default is KAFKA_BROKER_SESSION_TIMEOUT_MS);
 * heartbeats stay 6 per session.
 */
export const KAFKA_BROKER_SESSION_TIMEOUT_MS = 9000;
const LOCAL_BROKER_SESSION_TIMEOUT_MS = 3000;
function failoverProperties(sessionTimeoutMs: number): string[] {
  return [
    `broker.heartbeat.interval.ms=${Math.max(100, Math.round(sessionTimeoutMs / 6))}`,
    `broker.session.timeout.ms=${sessionTimeoutMs}`,
  ];
}

function nodeProperties(spec: ClusterSpec, node: NodeSpec): string {
  const { factor, minIsr } = replication(spec.nodes.length);
  return [
    'process.roles=broker,controller',
    `node.id=${node.id}`,
    `controller.quorum.voters=${spec.nodes.map((n) => `${n.id}@127.0.0.1:${n.controllerPort}`).join(',')}`,
    'controller.listener.names=CONTROLLER',
    ...listenerLines(spec, node),
    `log.dirs=${join(node.dir, 'data')}`,
    'num.partitions=1',
    'auto.create.topics.enable=false',
    `default.replication.factor=${factor}`,
    `min.insync.replicas=${minIsr}`,
    // An out-of-sync replica never becomes leader: losing acknowledged writes would hide the bugs
    // a multi-node cluster is there to show.
    'unclean.leader.election.enable=false',
    `offsets.topic.replication.factor=${factor}`,
    'offsets.topic.num.partitions=4',
    `transaction.state.log.replication.factor=${factor}`,
    `transaction.state.log.min.isr=${minIsr}`,
    ...(spec.nodes.length > 1 || spec.sessionTimeoutGiven ? failoverProperties(spec.sessionTimeoutMs) : []),
    // 0 by default: a local test cluster has nobody to wait for, so groups form at once.
    `group.initial.rebalance.delay.ms=${spec.groupDelayMs}`,
    'log.retention.hours=24',
    '',
  ].join('\n');
}

function writeLog4j(work: string): string {
  const file = join(work, 'log4j.properties');
  writeFileSync(
    file,
    [
      'log4j.rootLogger=WARN, stdout',
      'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
      'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
      'log4j.logger.kafka=WARN',
      'log4j.logger.org.apache.kafka=WARN',
      '',
    ].join('\n'),
  );
  return file;
}

/** Runs a JVM to completion without blocking the event loop (the nodes format in parallel). */
function runJava(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('java', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    child.on('error', (err) => resolve({ code: null, output: err.message }));
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** Formats every node's log dir with one cluster id; SCRAM users are written into the metadata here. */
async function formatNodes(spec: ClusterSpec, java: string[]): Promise<void> {
  const id = clusterId();
  const scram = spec.sasl ? scramFormatArgs(spec.sasl) : [];
  const results = await Promise.all(
    spec.nodes.map((n) => runJava([...java, 'kafka.tools.StorageTool', 'format', '-t', id, '-c', n.props, ...scram])),
  );
  const failed = results.findIndex((r) => r.code !== 0);
  if (failed >= 0)
    throw new BrokerUnavailableError(
      `formatting the Kafka log directory of node ${spec.nodes[failed]!.id} failed:\n${results[failed]!.output}`,
    );
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * A watchdog shell owns the JVM: when this Node process dies, even by SIGKILL, a watcher notices
 * within a second and stops Kafka (SIGKILL after 15 s), so no broker outlives the run that
 * started it. The shell writes the JVM's pid to `pidFile` (so a test can signal the JVM itself)
 * and exits as soon as the JVM does. SIGTERM to the shell stops the JVM and waits for it.
 */
function watchdogScript(java: string[], props: string, pidFile: string): string {
  return `trap 'kill $JPID 2>/dev/null; wait $JPID; kill $WPID 2>/dev/null; exit 0' TERM INT
java ${java.map(quote).join(' ')} kafka.Kafka ${quote(props)} & JPID=$!
echo $JPID > ${quote(pidFile)}
( while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill $JPID 2>/dev/null; sleep 15; kill -9 $JPID 2>/dev/null ) </dev/null >/dev/null 2>&1 & WPID=$!
wait $JPID; RC=$?
kill $WPID 2>/dev/null
exit $RC`;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

class LocalNode implements LocalKafkaNode {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private output = '';
  private starting: Promise<void> | null = null;
  private readonly pidFile: string;
  /** Set by the cluster's stop(): a stopped cluster's node does not start again. */
  closed = false;

  constructor(
    readonly nodeId: number,
    readonly port: number,
    private readonly props: string,
    dir: string,
    private readonly java: string[],
    private readonly startTimeoutMs: number,
  ) {
    this.pidFile = join(dir, 'jvm.pid');
  }

  get shellPid(): number {
    return this.child?.pid ?? 0;
  }

  alive(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last few KB the JVM printed, for error messages. */
  tail(): string {
    return this.output;
  }

  /** Starts the watchdog shell and its JVM without waiting for the port. */
  spawn(): void {
    rmSync(this.pidFile, { force: true });
    const child = spawn('bash', ['-c', watchdogScript(this.java, this.props, this.pidFile)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer) => {
      this.output = (this.output + b.toString()).slice(-4000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    this.child = child;
  }

  /** Resolves once the JVM listens; a second call while it starts waits for the same start. */
  start(): Promise<void> {
    if (this.starting) return this.starting;
    if (this.closed) return Promise.reject(new Error(`node ${this.nodeId} belongs to a stopped cluster`));
    if (this.alive()) return Promise.resolve();
    this.spawn();
    this.starting = waitForPort(this, this.startTimeoutMs).finally(() => {
      this.starting = null;
    });
    return this.starting;
  }

  /** The JVM's pid, which the shell writes right after starting it. */
  private async jvmPid(): Promise<number | null> {
    for (let i = 0; i < 50 && this.alive(); i++) {
      const pid = Number(existsSync(this.pidFile) ? readFileSync(this.pidFile, 'utf8').trim() : NaN);
      if (pid > 0) return pid;
      await sleep(50);
    }
    return null;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.alive()) return;
    const pid = await this.jvmPid();
    try {
      process.kill(pid ?? this.shellPid, pid ? signal : 'SIGTERM');
    } catch {
      /* already gone */
    }
    await this.exited;
  }

  /** SIGTERM to the shell (Kafka shuts down cleanly); SIGKILL to the JVM after `forceAfterMs`. */
  async stop(forceAfterMs: number): Promise<void> {
    if (!this.alive()) return;
    const force = setTimeout(() => void this.kill('SIGKILL'), forceAfterMs);
    this.child!.kill('SIGTERM');
    await this.exited;
    clearTimeout(force);
  }

  /** For process 'exit', where nothing can be awaited. */
  terminateNow(): void {
    if (this.alive()) this.child!.kill('SIGTERM');
  }
}

function waitForPort(node: LocalNode, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (!node.alive()) {
        reject(new BrokerUnavailableError(`Kafka node ${node.nodeId} exited during start-up:\n${node.tail()}`));
        return;
      }
      const s = connect({ host: '127.0.0.1', port: node.port }, () => {
        s.destroy();
        resolve();
      });
      s.on('error', () => {
        s.destroy();
        if (Date.now() > deadline)
          reject(
            new BrokerUnavailableError(
              `Kafka node ${node.nodeId} did not listen on 127.0.0.1:${node.port} within ${timeoutMs} ms:\n${node.tail()}`,
            ),
          );
        else setTimeout(attempt, 200);
      });
    };
    attempt();
  });
}

/** The kafkajs options this module's own admin client needs for the cluster's client listener. */
function adminSecurity(spec: ClusterSpec): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  if (!spec.tls || !spec.sasl) return {};
  return {
    ssl: { ca: [readFileSync(spec.tls.caFile, 'utf8')] },
    sasl: { mechanism: 'scram-sha-512', username: spec.sasl.username, password: spec.sasl.password },
  };
}

/** How many brokers `broker` lists in its metadata; a message instead when it does not answer. */
async function brokersListedBy(broker: string, security: Pick<KafkaConfig, 'ssl' | 'sasl'>): Promise<number | string> {
  const admin = new Kafka({
    brokers: [broker],
    clientId: 'fanout-local-wait',
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    ...security,
  }).admin();
  try {
    await admin.connect();
    return (await admin.describeCluster()).brokers.length;
  } catch (err) {
    return `${broker}: ${String(err)}`;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/**
 * Waits until every node answers a metadata request listing every node. A listening port is not
 * enough (a node serves clients once it has registered with the controller quorum), nor is one
 * node's answer: each applies the metadata log at its own pace, and a client asking a node a
 * moment behind would see a broker missing.
 */
async function waitForAllBrokers(spec: ClusterSpec, nodes: LocalNode[], brokers: string[], timeoutMs: number): Promise<void> {
  const security = adminSecurity(spec);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = nodes.find((n) => !n.alive());
    if (dead) throw new BrokerUnavailableError(`Kafka node ${dead.nodeId} exited during start-up:\n${dead.tail()}`);
    const answers = await Promise.all(brokers.map((b) => brokersListedBy(b, security)));
    if (answers.every((a) => a === nodes.length)) return;
    if (Date.now() > deadline) {
      const why = answers.map((a, i) => (typeof a === 'number' ? `${brokers[i]} lists ${a}` : a)).join('; ');
      throw new BrokerUnavailableError(
        `the local Kafka cluster did not list all ${nodes.length} brokers within ${timeoutMs} ms (${why}):\n${nodes.map((n) => n.tail()).join('\n')}`,
      );
    }
    await sleep(200);
  }
}

function clientEnvFor(spec: ClusterSpec, brokers: string[]): Record<string, string> {
  const { factor, minIsr } = replication(spec.nodes.length);
  const env: Record<string, string> = {
    KAFKA_BROKERS: brokers.join(','),
    FANOUT_TOPIC_REPLICATION_FACTOR: String(factor),
    FANOUT_TOPIC_MIN_INSYNC_REPLICAS: String(minIsr),
  };
  if (spec.tls && spec.sasl) {
    Object.assign(env, {
      FANOUT_KAFKA_SECURITY_PROTOCOL: 'sasl_ssl',
      FANOUT_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      FANOUT_KAFKA_SASL_USERNAME: spec.sasl.username,
      FANOUT_KAFKA_SASL_PASSWORD_FILE: spec.sasl.passwordFile,
      FANOUT_KAFKA_TLS_CA_FILE: spec.tls.caFile,
    });
  }
  return env;
}

/** `export NAME=value` lines (values shell-quoted where needed), for `eval` or a `.env`-style file. */
export function clientEnvExports(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => `export ${k}=${/^[\w@%+=:,./-]+$/.test(v) ? v : quote(v)}`)
    .join('\n');
}

/** Certificates and the user for sasl_ssl; openssl failures become BrokerUnavailableError. */
function makeCredentials(work: string): { tls: LocalClusterTlsFiles; sasl: LocalClusterSasl } {
  if (!hasCommand('openssl', ['version'])) {
    throw new BrokerUnavailableError(
      `openssl is not installed; a sasl_ssl local Kafka makes its certificates with it (Debian: apt-get install openssl). ${HOW_TO_POINT}`,
    );
  }
  try {
    return { tls: generateLocalTls(work), sasl: generateLocalSasl(work) };
  } catch (err) {
    throw new BrokerUnavailableError(`could not make the local cluster's certificates: ${(err as Error).message}`);
  }
}

async function planCluster(opts: LocalKafkaOptions, work: string): Promise<ClusterSpec> {
  const count = opts.brokers ?? 1;
  const security = opts.security ?? 'plaintext';
  const ports = await pickPorts(count * (security === 'sasl_ssl' ? 3 : 2), opts.port ?? 0);
  const nodes = Array.from({ length: count }, (_, i): NodeSpec => {
    const dir = join(work, `node-${i + 1}`);
    mkdirSync(dir);
    return {
      id: i + 1,
      port: ports[i]!,
      controllerPort: ports[count + i]!,
      ...(security === 'sasl_ssl' ? { internalPort: ports[2 * count + i]! } : {}),
      dir,
      props: join(dir, 'server.properties'),
    };
  });
  const spec: ClusterSpec = {
    work,
    security,
    nodes,
    groupDelayMs: opts.groupInitialRebalanceDelayMs ?? 0,
    sessionTimeoutMs: opts.brokerSessionTimeoutMs ?? LOCAL_BROKER_SESSION_TIMEOUT_MS,
    sessionTimeoutGiven: opts.brokerSessionTimeoutMs !== undefined,
    ...(opts.proxiedListener ? { proxied: opts.proxiedListener } : {}),
  };
  if (security === 'sasl_ssl') Object.assign(spec, makeCredentials(work));
  for (const n of nodes) writeFileSync(n.props, nodeProperties(spec, n));
  return spec;
}

function checkShape(opts: LocalKafkaOptions): void {
  if (opts.proxiedListener && ((opts.brokers ?? 1) !== 1 || (opts.security ?? 'plaintext') !== 'plaintext'))
    throw new RangeError('proxiedListener needs one plaintext node');
  if (opts.brokers !== undefined && opts.brokers !== 1 && opts.brokers !== 3)
    throw new RangeError(`brokers must be 1 or 3, got ${String(opts.brokers)}`);
  if (opts.security !== undefined && opts.security !== 'plaintext' && opts.security !== 'sasl_ssl') {
    throw new RangeError(`security must be plaintext or sasl_ssl, got ${String(opts.security)}`);
  }
}

export async function startLocalKafka(opts: LocalKafkaOptions = {}): Promise<LocalKafka> {
  checkShape(opts);
  const log = opts.log ?? (() => {});
  requireJava();
  const libs = ensureKafkaJars(log);
  const work = mkdtempSync(join(tmpdir(), 'fanout-kafka-'));
  let spec: ClusterSpec;
  const heap = opts.heap ?? (opts.brokers === 3 ? '384m' : '512m');
  const java = [
    `-Xms${heap}`,
    `-Xmx${heap}`,
    '-XX:+UseG1GC',
    '-XX:TieredStopAtLevel=1',
    '-Djava.awt.headless=true',
    `-Dlog4j.configuration=file:${writeLog4j(work)}`,
    '-cp',
    `${libs}/*`,
  ];
  try {
    spec = await planCluster(opts, work);
    await formatNodes(spec, java);
  } catch (err) {
    rmSync(work, { recursive: true, force: true });
    throw err;
  }
  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  const nodes = spec.nodes.map((n) => new LocalNode(n.id, n.port, n.props, n.dir, java, timeoutMs));
  const brokers = nodes.map((n) => `127.0.0.1:${n.port}`);
  const onExit = () => nodes.forEach((n) => n.terminateNow());
  process.once('exit', onExit);

  let stopped: Promise<void> | null = null;
  const stop = () => {
    stopped ??= (async () => {
      process.removeListener('exit', onExit);
      for (const n of nodes) n.closed = true;
      // One node stops cleanly in well under a second. In a cluster stopped all at once, the
      // last controller waits out KRaft's fixed 5 s graceful raft shutdown for voters that are
      // already gone; the data is about to be deleted, so that wait buys nothing.
      await Promise.all(nodes.map((n) => n.stop(nodes.length > 1 ? 1500 : 15_000)));
      rmSync(work, { recursive: true, force: true });
    })();
    return stopped;
  };
  try {
    log(
      `starting Apache Kafka ${KAFKA_VERSION} (KRaft, ${nodes.length} node${nodes.length > 1 ? 's' : ''}, ${spec.security}) on ${brokers.join(',')}`,
    );
    for (const n of nodes) n.spawn();
    await Promise.all(nodes.map((n) => waitForPort(n, timeoutMs)));
    await waitForAllBrokers(spec, nodes, brokers, timeoutMs);
  } catch (err) {
    await stop();
    throw err;
  }
  const { tls, sasl } = spec;
  return {
    brokers,
    get pid() {
      return nodes[0]!.shellPid;
    },
    groupInitialRebalanceDelayMs: spec.groupDelayMs,
    security: spec.security,
    workDir: work,
    clientEnv: clientEnvFor(spec, brokers),
    ...(tls
      ? {
          tls: {
            dir: tls.dir,
            caFile: tls.caFile,
            clientCertFile: tls.clientCertFile,
            clientKeyFile: tls.clientKeyFile,
            untrustedCaFile: tls.untrustedCaFile,
          },
        }
      : {}),
    ...(sasl ? { sasl: { ...sasl, oauthBearer: 'unsecured' as const } } : {}),
    nodes,
    stop,
  };
}

/** Lists the jars in the cache, for diagnostics. */
export function cachedJars(): string[] {
  const libs = join(cacheDir(), `kafka-${SCALA_VERSION}-${KAFKA_VERSION}`, 'libs');
  return existsSync(libs) ? readdirSync(libs) : [];
}
