/**
 * The Helm chart, rendered by real helm (scripts/install-tools.sh builds it; CI installs it before
 * the tests) and checked for what operators rely on: a StatefulSet with a headless Service per
 * region and its own consumer group, per-pod public URLs, probes, drain timing, PDBs, HPAs,
 * Secrets, topology spread, ServiceMonitor, Kafka security (Secrets mounted as files, *_FILE variables) and
 * topic durability in every workload, and the values the chart refuses. Skipped, with a message, where helm is not installed.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, findTool, parseYaml, parseYamlAll, run, runFailing, type Doc } from './deploy-tools.js';

const helm = findTool('helm');
const CHART = join(ROOT, 'charts/fanout');
// A fixed Kubernetes version, so the result does not depend on the default built into this helm.
const KUBE = ['--kube-version', '1.31.0'];

function render(values: Doc = {}, extra: string[] = []): Doc[] {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-chart-'));
  const file = join(dir, 'values.json');
  writeFileSync(file, JSON.stringify(values));
  return parseYamlAll(run(helm!, ['template', 'rel', CHART, '--namespace', 'push', ...KUBE, '-f', file, ...extra]));
}

function renderFailing(values: Doc): string {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-chart-'));
  const file = join(dir, 'values.json');
  writeFileSync(file, JSON.stringify(values));
  return runFailing(helm!, ['template', 'rel', CHART, ...KUBE, '-f', file]);
}

const find = (docs: Doc[], kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata?.name === name);
const envOf = (container: Doc) => Object.fromEntries((container.env as Doc[]).map((e) => [e.name, e.value ?? e.valueFrom]));

// Without helm every test below is reported as skipped: install it with scripts/install-tools.sh helm.
describe.skipIf(!helm)('Helm chart charts/fanout', () => {
  let docs: Doc[];
  beforeAll(() => {
    docs = render();
  });

  it('passes helm lint (default values, and with every optional part on)', () => {
    expect(run(helm!, ['lint', CHART, ...KUBE])).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    const all = [
      'marketData.enabled=true',
      'metrics.serviceMonitor.enabled=true',
      'metrics.prometheusRule.enabled=true',
      'metrics.grafanaDashboard.enabled=true',
      'gateway.autoscaling.enabled=true',
      'gateway.perPodIngress.enabled=true',
    ];
    expect(run(helm!, ['lint', CHART, ...KUBE, ...all.flatMap((s) => ['--set', s])])).toMatch(/0 chart\(s\) failed/);
    const secured = [
      'kafka.security.protocol=sasl_ssl',
      'kafka.security.sasl.mechanism=scram-sha-512',
      'kafka.security.sasl.existingSecret=kafka-user',
      'kafka.security.tls.existingSecret=kafka-ca',
    ];
    expect(run(helm!, ['lint', CHART, ...KUBE, ...[...all, ...secured].flatMap((s) => ['--set', s])])).toMatch(/0 chart\(s\) failed/);
  });

  it('renders a StatefulSet per region, each with its headless Service and its own consumer group', () => {
    for (const region of ['eu', 'us']) {
      const sts = find(docs, 'StatefulSet', `rel-fanout-gateway-${region}`);
      expect(sts, `StatefulSet of ${region}`).toBeDefined();
      expect(sts!.spec.replicas).toBe(2);
      const headless = find(docs, 'Service', sts!.spec.serviceName);
      expect(headless, 'the StatefulSet names an existing Service').toBeDefined();
      expect(headless!.spec.clusterIP).toBe('None');
      expect(headless!.spec.selector).toEqual(sts!.spec.selector.matchLabels);
      expect(sts!.spec.template.metadata.labels).toMatchObject(sts!.spec.selector.matchLabels);
      const env = envOf(sts!.spec.template.spec.containers[0]);
      expect(env.FANOUT_REGION).toBe(region);
      expect(env.FANOUT_USER_GROUP_ID).toBe(`fanout-gw-${region}`);
      expect(env.FANOUT_NODE).toBe('$(POD_NAME)');
    }
  });

  it('gives every gateway pod its own public URL (the address the router hands to its clients)', () => {
    const sts = find(docs, 'StatefulSet', 'rel-fanout-gateway-eu')!;
    const c = sts.spec.template.spec.containers[0];
    const names = (c.env as Doc[]).map((e) => e.name);
    // $(POD_NAME) expands only from a variable defined earlier in the list.
    expect(names.indexOf('POD_NAME')).toBeLessThan(names.indexOf('FANOUT_PUBLIC_URL'));
    expect(names.indexOf('POD_NAMESPACE')).toBeLessThan(names.indexOf('FANOUT_PUBLIC_URL'));
    expect(envOf(c).FANOUT_PUBLIC_URL).toBe('http://$(POD_NAME).rel-fanout-gateway-eu-headless.$(POD_NAMESPACE).svc.cluster.local:9000');

    const ext = render({
      gateway: {
        publicUrl: 'https://{pod}.ws.example.com',
        perPodIngress: { enabled: true, className: 'nginx', tlsSecretName: 'ws-tls' },
        autoscaling: { enabled: true, maxReplicas: 4 },
      },
    });
    expect(envOf(find(ext, 'StatefulSet', 'rel-fanout-gateway-us')!.spec.template.spec.containers[0]).FANOUT_PUBLIC_URL).toBe(
      'https://$(POD_NAME).ws.example.com',
    );
    const ing = find(ext, 'Ingress', 'rel-fanout-gateway-us')!;
    // One host per ordinal up to the HPA's maximum, each to a Service that selects that one pod.
    expect(ing.spec.rules.map((r: Doc) => r.host)).toEqual([0, 1, 2, 3].map((i) => `rel-fanout-gateway-us-${i}.ws.example.com`));
    for (const [i, rule] of (ing.spec.rules as Doc[]).entries()) {
      const svc = find(ext, 'Service', rule.http.paths[0].backend.service.name)!;
      expect(svc.spec.selector['statefulset.kubernetes.io/pod-name']).toBe(`rel-fanout-gateway-us-${i}`);
    }
  });

  it('probes /healthz and /readyz on every service', () => {
    const workloads = docs.filter((d) => d.kind === 'StatefulSet' || d.kind === 'Deployment');
    expect(workloads.map((w) => w.metadata.name).sort()).toEqual([
      'rel-fanout-dispatcher',
      'rel-fanout-gateway-eu',
      'rel-fanout-gateway-us',
      'rel-fanout-publisher',
      'rel-fanout-router',
    ]);
    for (const w of [...workloads, find(render({ marketData: { enabled: true } }), 'Deployment', 'rel-fanout-market-data')!]) {
      const c = w.spec.template.spec.containers[0];
      expect(c.livenessProbe.httpGet.path, w.metadata.name).toBe('/healthz');
      expect(c.readinessProbe.httpGet.path, w.metadata.name).toBe('/readyz');
      expect(c.startupProbe.httpGet.path, w.metadata.name).toBe('/healthz');
      expect(c.ports[0].name).toBe('http');
    }
  });

  it('gives every pod a grace period longer than its preStop pause plus its drain', () => {
    const sts = find(docs, 'StatefulSet', 'rel-fanout-gateway-eu')!;
    const spec = sts.spec.template.spec;
    const c = spec.containers[0];
    expect(c.lifecycle.preStop.exec.command).toEqual(['sleep', '5']);
    const env = envOf(c);
    const drainS = Number(env.FANOUT_SHUTDOWN_GRACE_MS) / 1000;
    expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(5 + drainS);
    expect(Number(env.FANOUT_DRAIN_DELAY_MS)).toBeLessThan(Number(env.FANOUT_SHUTDOWN_GRACE_MS));
    for (const name of ['rel-fanout-publisher', 'rel-fanout-dispatcher']) {
      const d = find(docs, 'Deployment', name)!.spec.template.spec;
      // The shutdown limit, the preStop pause, and up to 10 s to flush the producer or commit offsets.
      expect(d.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(
        Number(envOf(d.containers[0]).FANOUT_SHUTDOWN_GRACE_MS) / 1000 + 5 + 10,
      );
    }
    // And refuses to render a grace period that would cut the drain short.
    expect(runFailing(helm!, ['template', 'rel', CHART, ...KUBE, '--set', 'gateway.terminationGracePeriodSeconds=20'])).toMatch(
      /terminationGracePeriodSeconds \(20\) must be longer/,
    );
  });

  it('has a PodDisruptionBudget for each gateway region and stateless service', () => {
    const pdbs = docs.filter((d) => d.kind === 'PodDisruptionBudget');
    expect(pdbs.map((p) => p.metadata.name).sort()).toEqual([
      'rel-fanout-dispatcher',
      'rel-fanout-gateway-eu',
      'rel-fanout-gateway-us',
      'rel-fanout-publisher',
      'rel-fanout-router',
    ]);
    for (const p of pdbs) {
      expect(p.apiVersion).toBe('policy/v1');
      expect(p.spec.maxUnavailable).toBe(1);
      const target = docs.find((d) => (d.kind === 'StatefulSet' || d.kind === 'Deployment') && d.metadata.name === p.metadata.name)!;
      expect(p.spec.selector.matchLabels).toEqual(target.spec.selector.matchLabels);
    }
  });

  it('scales gateways with an HPA on CPU, and on connections per pod when a metrics adapter exists', () => {
    expect(docs.filter((d) => d.kind === 'HorizontalPodAutoscaler')).toHaveLength(0);
    const on = render({ gateway: { autoscaling: { enabled: true, connections: { enabled: true, targetAverageValue: '15000' } } } });
    const hpa = find(on, 'HorizontalPodAutoscaler', 'rel-fanout-gateway-eu')!;
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'rel-fanout-gateway-eu' });
    expect(hpa.spec.metrics).toContainEqual({
      type: 'Resource',
      resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } },
    });
    expect(hpa.spec.metrics).toContainEqual({
      type: 'Pods',
      pods: { metric: { name: 'fanout_gateway_connections' }, target: { type: 'AverageValue', averageValue: '15000' } },
    });
    expect(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds).toBeGreaterThanOrEqual(300);
    // With an HPA the StatefulSet leaves replicas to it.
    expect(find(on, 'StatefulSet', 'rel-fanout-gateway-eu')!.spec.replicas).toBeUndefined();
  });

  it('takes API keys and the token key from a Secret, or from an existing one', () => {
    const secret = find(docs, 'Secret', 'rel-fanout-secrets')!;
    for (const k of ['api-keys', 'token-secret', 'dispatcher-api-keys'])
      expect(Buffer.from(secret.data[k], 'base64').length, k).toBeGreaterThanOrEqual(32);
    const refs = (name: string, kind = 'Deployment') =>
      (find(docs, kind, name)!.spec.template.spec.containers[0].env as Doc[]).filter((e) => e.valueFrom?.secretKeyRef);
    expect(refs('rel-fanout-publisher').map((e) => [e.name, e.valueFrom.secretKeyRef.key])).toContainEqual(['FANOUT_API_KEYS', 'api-keys']);
    expect(refs('rel-fanout-dispatcher').map((e) => [e.name, e.valueFrom.secretKeyRef.key])).toContainEqual([
      'FANOUT_API_KEYS',
      'dispatcher-api-keys',
    ]);
    expect(refs('rel-fanout-gateway-eu', 'StatefulSet').map((e) => [e.name, e.valueFrom.secretKeyRef.key])).toContainEqual([
      'FANOUT_TOKEN_SECRET',
      'token-secret',
    ]);
    // No secret value in a workload's plain environment.
    for (const w of docs.filter((d) => d.kind === 'StatefulSet' || d.kind === 'Deployment')) {
      const plain = (w.spec.template.spec.containers[0].env as Doc[]).filter(
        (e) => /API_KEYS|SECRET|INBOUND_WEBHOOKS/.test(e.name) && e.value !== undefined,
      );
      expect(plain, w.metadata.name).toEqual([]);
    }
    const existing = render({ secrets: { existingSecret: 'prod-fanout' } });
    expect(existing.filter((d) => d.kind === 'Secret')).toHaveLength(0);
    const pub = find(existing, 'Deployment', 'rel-fanout-publisher')!;
    expect((pub.spec.template.spec.containers[0].env as Doc[]).find((e) => e.name === 'FANOUT_API_KEYS')!.valueFrom.secretKeyRef.name).toBe(
      'prod-fanout',
    );
    expect(runFailing(helm!, ['template', 'rel', CHART, ...KUBE, '--set', 'secrets.tokenSecret=short'])).toMatch(/at least 32 bytes/);
  });

  it('runs every pod as non-root with a read-only root filesystem, without service links', () => {
    for (const w of docs.filter((d) => d.kind === 'StatefulSet' || d.kind === 'Deployment')) {
      const spec = w.spec.template.spec;
      expect(spec.securityContext.runAsNonRoot, w.metadata.name).toBe(true);
      expect(spec.securityContext.runAsUser).toBe(1000);
      expect(spec.enableServiceLinks).toBe(false); // Service variables would land in FANOUT_*
      expect(spec.automountServiceAccountToken).toBe(false);
      const c = spec.containers[0];
      expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
      expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
      expect(c.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
    }
  });

  it('spreads pods across zones and nodes', () => {
    for (const w of docs.filter((d) => d.kind === 'StatefulSet' || d.kind === 'Deployment')) {
      const tsc = w.spec.template.spec.topologySpreadConstraints as Doc[];
      expect(
        tsc.map((t) => t.topologyKey),
        w.metadata.name,
      ).toEqual(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
      for (const t of tsc) expect(t.labelSelector.matchLabels).toEqual(w.spec.selector.matchLabels);
    }
  });

  it('points the router at the regions and consumer groups of the gateways', () => {
    const router = find(docs, 'Deployment', 'rel-fanout-router')!;
    const env = envOf(router.spec.template.spec.containers[0]);
    expect(env.FANOUT_REGIONS).toBe('eu,us');
    expect(env.FANOUT_GROUP_ID_TEMPLATE).toBe('fanout-gw-{region}');
    const gw = envOf(find(docs, 'StatefulSet', 'rel-fanout-gateway-eu')!.spec.template.spec.containers[0]);
    expect(gw.FANOUT_ROUTER_URL).toBe('http://rel-fanout-router.push.svc.cluster.local:8090');
    const three = render({
      gateway: {
        regions: [{ name: 'eu' }, { name: 'us', replicaCount: 4 }, { name: 'ap', replicaCount: 1, kafkaBrokers: 'kafka-ap:9092' }],
      },
    });
    expect(envOf(find(three, 'Deployment', 'rel-fanout-router')!.spec.template.spec.containers[0]).FANOUT_REGIONS).toBe('eu,us,ap');
    expect(find(three, 'StatefulSet', 'rel-fanout-gateway-us')!.spec.replicas).toBe(4);
    const ap = find(three, 'StatefulSet', 'rel-fanout-gateway-ap')!;
    expect(ap.spec.replicas).toBe(1);
    expect(envOf(ap.spec.template.spec.containers[0]).FANOUT_BROKERS).toBe('kafka-ap:9092');
    expect(runFailing(helm!, ['template', 'rel', CHART, ...KUBE, '--set', 'gateway.regions[0].name=EU'])).toMatch(
      /must be 1 to 32 of \[a-z0-9-\]/,
    );
  });

  it('exposes a metrics port on every scraped Service, and scrapes them with an opt-in ServiceMonitor', () => {
    expect(docs.filter((d) => d.kind === 'ServiceMonitor')).toHaveLength(0);
    const scraped = docs.filter((d) => d.kind === 'Service' && d.metadata.labels['fanout.io/scrape'] === 'true');
    expect(scraped.map((s) => s.metadata.name).sort()).toEqual([
      'rel-fanout-dispatcher',
      'rel-fanout-gateway-eu-headless',
      'rel-fanout-gateway-us-headless',
      'rel-fanout-publisher',
      'rel-fanout-router',
    ]);
    for (const s of scraped) expect((s.spec.ports as Doc[]).map((p) => p.name)).toContain('metrics');
    const on = render({
      metrics: {
        serviceMonitor: { enabled: true, labels: { release: 'kps' } },
        prometheusRule: { enabled: true },
        grafanaDashboard: { enabled: true },
      },
    });
    const sm = find(on, 'ServiceMonitor', 'rel-fanout')!;
    expect(sm.metadata.labels.release).toBe('kps');
    expect(sm.spec.selector.matchLabels['fanout.io/scrape']).toBe('true');
    expect(sm.spec.endpoints[0]).toMatchObject({ port: 'metrics', path: '/metrics' });
    const rule = find(on, 'PrometheusRule', 'rel-fanout')!;
    const alerts = (rule.spec.groups as Doc[]).flatMap((g) => g.rules as Doc[]).map((r) => r.alert);
    expect(alerts).toEqual(
      expect.arrayContaining([
        'FanoutNoLiveGateway',
        'FanoutUnownedUserPartitions',
        'FanoutKafkaConsumerLagHigh',
        'FanoutSlowConsumerDisconnects',
        'FanoutWebhookDeadLetters',
      ]),
    );
    const dash = find(on, 'ConfigMap', 'rel-fanout-dashboard')!;
    expect(JSON.parse(dash.data['fanout.json']).uid).toBe('fanout-overview');
  });

  describe('Kafka security and topic durability (kafka.security, kafka.topics)', () => {
    const workloads = (d: Doc[]) => d.filter((w) => w.kind === 'StatefulSet' || w.kind === 'Deployment');
    const ALL = [
      'rel-fanout-dispatcher',
      'rel-fanout-gateway-eu',
      'rel-fanout-gateway-us',
      'rel-fanout-market-data',
      'rel-fanout-publisher',
      'rel-fanout-router',
    ];
    const kafkaEnv = (w: Doc) =>
      Object.fromEntries(Object.entries(envOf(w.spec.template.spec.containers[0])).filter(([k]) => /^FANOUT_(KAFKA|TOPIC)_/.test(k)));
    const kafkaMounts = (w: Doc) => (w.spec.template.spec.containers[0].volumeMounts as Doc[]).filter((m) => m.name.startsWith('kafka-'));
    const kafkaVolumes = (w: Doc) => (w.spec.template.spec.volumes as Doc[]).filter((v) => v.name.startsWith('kafka-'));
    const TOPICS = {
      FANOUT_TOPIC_BROADCAST: 'fanout.broadcast',
      FANOUT_TOPIC_USERS: 'fanout.users',
      FANOUT_TOPIC_REPLICATION_FACTOR: '3',
      FANOUT_TOPIC_MIN_INSYNC_REPLICAS: '2',
      FANOUT_TOPIC_RETENTION_MS: '604800000',
      FANOUT_TOPIC_STRICT: 'false',
    };

    it('defaults to plaintext with replicated, 7-day topics, in every service', () => {
      const d = render({ marketData: { enabled: true } });
      expect(
        workloads(d)
          .map((w) => w.metadata.name)
          .sort(),
      ).toEqual(ALL);
      for (const w of workloads(d)) {
        expect(kafkaEnv(w), w.metadata.name).toEqual({ ...TOPICS, FANOUT_KAFKA_SECURITY_PROTOCOL: 'plaintext' });
        expect(kafkaMounts(w)).toEqual([]);
        expect(kafkaVolumes(w)).toEqual([]);
      }
    });

    it('SASL/SCRAM over TLS with a private CA: env pointing at read-only Secret mounts in every deployment and statefulset', () => {
      const d = render({
        marketData: { enabled: true },
        kafka: {
          topics: { retentionMs: 1209600000, strict: true },
          security: {
            protocol: 'SASL_SSL',
            tls: { existingSecret: 'kafka-ca', serverName: 'kafka.internal' },
            sasl: { mechanism: 'SCRAM_SHA_512', existingSecret: 'kafka-fanout-user' },
          },
        },
      });
      expect(
        workloads(d)
          .map((w) => w.metadata.name)
          .sort(),
      ).toEqual(ALL);
      for (const w of workloads(d)) {
        expect(kafkaEnv(w), w.metadata.name).toEqual({
          ...TOPICS,
          FANOUT_TOPIC_RETENTION_MS: '1209600000',
          FANOUT_TOPIC_STRICT: 'true',
          FANOUT_KAFKA_SECURITY_PROTOCOL: 'sasl_ssl',
          FANOUT_KAFKA_TLS_CA_FILE: '/etc/fanout/kafka/tls/ca.crt',
          FANOUT_KAFKA_TLS_SERVERNAME: 'kafka.internal',
          FANOUT_KAFKA_SASL_MECHANISM: 'scram-sha-512',
          FANOUT_KAFKA_SASL_USERNAME_FILE: '/etc/fanout/kafka/sasl/username',
          FANOUT_KAFKA_SASL_PASSWORD_FILE: '/etc/fanout/kafka/sasl/password',
        });
        expect(kafkaMounts(w), w.metadata.name).toEqual([
          { name: 'kafka-tls', mountPath: '/etc/fanout/kafka/tls', readOnly: true },
          { name: 'kafka-sasl', mountPath: '/etc/fanout/kafka/sasl', readOnly: true },
        ]);
        expect(kafkaVolumes(w)).toEqual([
          { name: 'kafka-tls', secret: { secretName: 'kafka-ca' } },
          { name: 'kafka-sasl', secret: { secretName: 'kafka-fanout-user' } },
        ]);
      }
      // A gateway region with its own brokers gets the same security settings.
      const regional = render({
        gateway: { regions: [{ name: 'ap', kafkaBrokers: 'kafka-ap:9093' }] },
        kafka: { security: { protocol: 'ssl', tls: { existingSecret: 'kafka-ca' } } },
      });
      const ap = envOf(find(regional, 'StatefulSet', 'rel-fanout-gateway-ap')!.spec.template.spec.containers[0]);
      expect([ap.FANOUT_BROKERS, ap.FANOUT_KAFKA_SECURITY_PROTOCOL, ap.FANOUT_KAFKA_TLS_CA_FILE]).toEqual([
        'kafka-ap:9093',
        'ssl',
        '/etc/fanout/kafka/tls/ca.crt',
      ]);
    });

    it('mutual TLS with an encrypted key, and a plain user name: files for the secrets, a value for the name', () => {
      const d = render({
        kafka: {
          security: {
            protocol: 'sasl_ssl',
            tls: { existingSecret: 'kafka-client', caKey: 'ca.crt', certKey: 'tls.crt', keyKey: 'tls.key', keyPasswordKey: 'key-password' },
            sasl: { mechanism: 'plain', username: 'fanout', existingSecret: 'kafka-creds', passwordKey: 'secret' },
          },
        },
      });
      const env = kafkaEnv(find(d, 'Deployment', 'rel-fanout-publisher')!);
      expect(env).toMatchObject({
        FANOUT_KAFKA_TLS_CA_FILE: '/etc/fanout/kafka/tls/ca.crt',
        FANOUT_KAFKA_TLS_CERT_FILE: '/etc/fanout/kafka/tls/tls.crt',
        FANOUT_KAFKA_TLS_KEY_FILE: '/etc/fanout/kafka/tls/tls.key',
        FANOUT_KAFKA_TLS_KEY_PASSWORD_FILE: '/etc/fanout/kafka/tls/key-password',
        FANOUT_KAFKA_SASL_MECHANISM: 'plain',
        FANOUT_KAFKA_SASL_USERNAME: 'fanout',
        FANOUT_KAFKA_SASL_PASSWORD_FILE: '/etc/fanout/kafka/sasl/secret',
      });
      // Never both a variable and its _FILE form (the services refuse that), never a password as a value.
      for (const w of workloads(d)) {
        const names = (w.spec.template.spec.containers[0].env as Doc[]).map((e) => e.name as string);
        for (const n of names.filter((x) => x.endsWith('_FILE'))) expect(names, w.metadata.name).not.toContain(n.slice(0, -5));
        expect(names.filter((n) => /^FANOUT_KAFKA_(SASL_PASSWORD|TLS_KEY_PASSWORD)$/.test(n))).toEqual([]);
      }
    });

    it('Amazon MSK IAM: oauthbearer with a token provider module and the public CAs', () => {
      // The module is part of a derived image (or an installed package): no TLS Secret, no mounts.
      const baked = render({
        kafka: {
          brokers: 'b-1.msk.example:9098,b-2.msk.example:9098',
          security: {
            protocol: 'sasl_ssl',
            sasl: { mechanism: 'oauthbearer', oauth: { tokenProvider: '/app/msk-iam/token-provider.mjs' } },
          },
        },
      });
      for (const w of workloads(baked)) {
        expect(kafkaEnv(w), w.metadata.name).toEqual({
          ...TOPICS,
          FANOUT_KAFKA_SECURITY_PROTOCOL: 'sasl_ssl',
          FANOUT_KAFKA_SASL_MECHANISM: 'oauthbearer',
          FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER: '/app/msk-iam/token-provider.mjs',
        });
        expect(kafkaMounts(w)).toEqual([]);
      }
      // The module from a ConfigMap, mounted inside /app so that its imports resolve against the image's node_modules.
      const mounted = render({
        marketData: { enabled: true },
        kafka: { security: { protocol: 'sasl_ssl', sasl: { mechanism: 'oauthbearer', oauth: { providerConfigMap: 'msk-iam-provider' } } } },
      });
      for (const w of workloads(mounted)) {
        expect(kafkaEnv(w).FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER, w.metadata.name).toBe('/app/kafka-oauth/token-provider.mjs');
        expect(kafkaMounts(w)).toEqual([{ name: 'kafka-oauth', mountPath: '/app/kafka-oauth', readOnly: true }]);
        expect(kafkaVolumes(w)).toEqual([{ name: 'kafka-oauth', configMap: { name: 'msk-iam-provider' } }]);
      }
      // Or a token kept fresh in a Secret by something else, re-read at each authentication.
      const file = render({
        kafka: {
          security: {
            protocol: 'sasl_ssl',
            sasl: { mechanism: 'oauthbearer', existingSecret: 'kafka-token', oauth: { tokenKey: 'token' } },
          },
        },
      });
      const env = kafkaEnv(find(file, 'Deployment', 'rel-fanout-router')!);
      expect(env.FANOUT_KAFKA_OAUTH_TOKEN_FILE).toBe('/etc/fanout/kafka/sasl/token');
      expect(env.FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER).toBeUndefined();
    });

    it('refuses inconsistent security and topic values with a message naming the key', () => {
      const sec = (security: Doc) => ({ kafka: { security } });
      const cases: [Doc, RegExp][] = [
        [sec({ protocol: 'tls' }), /kafka\.security\.protocol must be plaintext, ssl, sasl_plaintext or sasl_ssl \(got "tls"\)/],
        [sec({ protocol: 'sasl_ssl' }), /kafka\.security\.protocol is sasl_ssl but kafka\.security\.sasl\.mechanism is empty/],
        [
          sec({ protocol: 'sasl_ssl', sasl: { mechanism: 'gssapi' } }),
          /kafka\.security\.sasl\.mechanism must be plain, scram-sha-256, scram-sha-512 or oauthbearer/,
        ],
        [
          sec({ protocol: 'sasl_ssl', sasl: { mechanism: 'scram-sha-256' } }),
          /mechanism scram-sha-256 needs kafka\.security\.sasl\.existingSecret/,
        ],
        [
          sec({ protocol: 'plaintext', sasl: { mechanism: 'plain', existingSecret: 's' } }),
          /kafka\.security\.sasl is set but kafka\.security\.protocol is plaintext/,
        ],
        [
          sec({ protocol: 'sasl_plaintext', sasl: { mechanism: 'plain', existingSecret: 's' }, tls: { existingSecret: 'ca' } }),
          /kafka\.security\.tls is set but kafka\.security\.protocol is sasl_plaintext/,
        ],
        [
          sec({ protocol: 'ssl', tls: { existingSecret: 'c', certKey: 'tls.crt' } }),
          /certKey is set without kafka\.security\.tls\.keyKey: mutual TLS needs/,
        ],
        [sec({ protocol: 'ssl', tls: { existingSecret: 'c', keyKey: 'tls.key' } }), /keyKey is set without kafka\.security\.tls\.certKey/],
        [sec({ protocol: 'ssl', tls: { certKey: 'tls.crt', keyKey: 'tls.key' } }), /need kafka\.security\.tls\.existingSecret/],
        [sec({ protocol: 'sasl_ssl', sasl: { mechanism: 'oauthbearer' } }), /oauthbearer but no token source is set/],
        [
          sec({
            protocol: 'sasl_ssl',
            sasl: { mechanism: 'oauthbearer', existingSecret: 't', oauth: { tokenProvider: 'p', tokenKey: 'token' } },
          }),
          /set one token source/,
        ],
        [
          sec({ protocol: 'sasl_ssl', sasl: { mechanism: 'scram-sha-512', existingSecret: 's', oauth: { tokenProvider: 'p' } } }),
          /kafka\.security\.sasl\.oauth is set but kafka\.security\.sasl\.mechanism is scram-sha-512/,
        ],
        [
          { kafka: { topics: { minInsyncReplicas: 3, replicationFactor: 2 } } },
          /kafka\.topics\.minInsyncReplicas \(3\) must not exceed kafka\.topics\.replicationFactor \(2\)/,
        ],
        [{ kafka: { topics: { replicationFactor: 0 } } }, /kafka\.topics\.replicationFactor must be a whole number of at least 1/],
        [{ kafka: { topics: { retentionMs: 1000 } } }, /kafka\.topics\.retentionMs must be at least 60000/],
      ];
      for (const [values, message] of cases) expect(renderFailing(values), JSON.stringify(values)).toMatch(message);
    });
  });

  it('keeps market-data off by default', () => {
    expect(docs.find((d) => d.metadata?.name === 'rel-fanout-market-data')).toBeUndefined();
  });

  it('documents every values key in charts/fanout/README.md', () => {
    const values = parseYaml(readFileSync(join(CHART, 'values.yaml'), 'utf8'));
    const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
    const keys: string[] = [];
    const walk = (o: Doc, prefix: string) => {
      for (const [k, v] of Object.entries(o)) {
        const key = prefix ? `${prefix}.${k}` : k;
        // Maps of free-form entries (env, labels, annotations, resources, ...) are documented as one key.
        if (
          v &&
          typeof v === 'object' &&
          !Array.isArray(v) &&
          Object.keys(v).length > 0 &&
          !/^(env|secretEnv|labels|annotations|podAnnotations|resources|requests|limits|nodeSelector|affinity|behavior|podSecurityContext|containerSecurityContext|commonLabels|extra|scaleUp|scaleDown|seccompProfile|capabilities)$/.test(
            k,
          )
        )
          walk(v, key);
        else keys.push(key);
      }
    };
    walk(values, '');
    const missing = keys.filter((k) => !readme.includes(`\`${k}\``));
    expect(missing).toEqual([]);
  });
});
