/**
 * docker-compose.yml, checked statically (no Docker engine runs here): every service of the laptop
 * cluster is there with its ports and dependencies, images are built from the repository's
 * Dockerfile for services that exist, mounted files exist, Prometheus scrapes every service.
 * Where docker-compose (v1, Debian's package) is installed, `docker-compose config` validates the
 * file against the Compose schema too.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, SERVICES, entryOf, findTool, parseYaml, run, type Doc } from './deploy-tools.js';

const compose = parseYaml(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'));
const services = compose.services as Record<string, Doc>;
const prometheus = parseYaml(readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8'));

const expected: Record<string, { service?: string; port?: number }> = {
  kafka: {},
  'kafka-init': {},
  'kafka-exporter': {},
  publisher: { service: 'publisher', port: 8080 },
  router: { service: 'router', port: 8090 },
  'gateway-eu-0': { service: 'gateway', port: 9001 },
  'gateway-eu-1': { service: 'gateway', port: 9003 },
  'gateway-us-0': { service: 'gateway', port: 9002 },
  dispatcher: { service: 'dispatcher', port: 8070 },
  'market-data': { service: 'market-data', port: 9100 },
  prometheus: { port: 9090 },
  grafana: { port: 3000 },
};

describe('docker-compose.yml', () => {
  it('has every part of the laptop cluster', () => {
    expect(Object.keys(services).sort()).toEqual(Object.keys(expected).sort());
    expect(services.kafka!.image).toMatch(/^apache\/kafka:\d+\.\d+\.\d+$/);
    expect(services.kafka!.environment.KAFKA_PROCESS_ROLES).toBe('broker,controller'); // KRaft, no ZooKeeper
  });

  it('builds each fanout service from the Dockerfile, for a service that exists', () => {
    for (const [name, e] of Object.entries(expected)) {
      if (!e.service) continue;
      const b = services[name]!.build;
      expect(b, `${name} build`).toBeDefined();
      expect(existsSync(join(ROOT, b.context, b.dockerfile ?? 'Dockerfile')), `${name}: ${b.dockerfile}`).toBe(true);
      expect(b.args.SERVICE).toBe(e.service);
      expect(SERVICES).toContain(e.service);
      if (e.service !== 'dispatcher' || existsSync(join(ROOT, 'services/dispatcher')))
        expect(existsSync(entryOf(e.service)), `entry of ${e.service}`).toBe(true);
    }
    // Every image is pinned to a version, never :latest.
    for (const [name, s] of Object.entries(services)) if (s.image) expect(s.image, name).not.toMatch(/:latest$|^[^:]+$/);
  });

  it('listens where it publishes, so the URLs the gateways announce work from the host', () => {
    for (const [name, e] of Object.entries(expected)) {
      if (!e.port) continue;
      const s = services[name]!;
      if (e.service) {
        expect(s.environment.FANOUT_PORT, `${name} FANOUT_PORT`).toBe(String(e.port));
        expect(s.environment.FANOUT_HOST, `${name} listens beyond loopback`).toBe('0.0.0.0');
      }
      if (name === 'market-data') continue; // metrics only, inside the network
      expect(s.ports, `${name} ports`).toContain(`${e.port}:${e.port}`);
    }
    for (const name of ['gateway-eu-0', 'gateway-eu-1', 'gateway-us-0']) {
      const env = services[name]!.environment;
      expect(env.FANOUT_PUBLIC_URL).toBe(`http://localhost:${env.FANOUT_PORT}`);
      expect(env.FANOUT_REGION).toBe(name.split('-')[1]);
      expect(services[name]!.stop_grace_period).toBe('30s'); // longer than FANOUT_SHUTDOWN_GRACE_MS
      expect(Number(env.FANOUT_SHUTDOWN_GRACE_MS)).toBeLessThan(30_000);
    }
    expect(services.router!.environment.FANOUT_REGIONS).toBe('eu,us');
  });

  it('starts services after the topics exist, and everything after Kafka is healthy', () => {
    expect(services['kafka-init']!.depends_on.kafka.condition).toBe('service_healthy');
    expect(services['kafka-init']!.command.join(' ')).toMatch(/--topic fanout\.broadcast[\s\S]*--topic fanout\.users/);
    for (const [name, e] of Object.entries(expected)) {
      const deps = services[name]!.depends_on ?? {};
      for (const d of Object.keys(deps)) expect(services[d], `${name} depends on ${d}`).toBeDefined();
      if (e.service) expect(deps['kafka-init']?.condition, name).toBe('service_completed_successfully');
    }
  });

  it('scrapes every fanout service and kafka-exporter from Prometheus, with the alert rules loaded', () => {
    const targets = (prometheus.scrape_configs as Doc[]).flatMap((j) => (j.static_configs as Doc[]).flatMap((c) => c.targets as string[]));
    for (const [name, e] of Object.entries(expected)) if (e.service) expect(targets, name).toContain(`${name}:${e.port}`);
    expect(targets).toContain('kafka-exporter:9308');
    const mounts = (services.prometheus!.volumes as string[]).map((v) => v.split(':'));
    for (const [src, dst] of mounts) {
      expect(existsSync(join(ROOT, src!)), src).toBe(true);
      expect(dst).toMatch(/^\/etc\/prometheus\//);
    }
    expect(prometheus.rule_files).toContain('/etc/prometheus/alerts.yml');
    expect(mounts.map((m) => m[1])).toContain('/etc/prometheus/alerts.yml');
  });

  it('provisions Grafana with the Prometheus data source and the fanout dashboard', () => {
    for (const v of services.grafana!.volumes as string[]) expect(existsSync(join(ROOT, v.split(':')[0]!)), v).toBe(true);
    const ds = parseYaml(readFileSync(join(ROOT, 'deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8'));
    expect(ds.datasources[0].url).toBe('http://prometheus:9090');
    const provider = parseYaml(readFileSync(join(ROOT, 'deploy/grafana/provisioning/dashboards/fanout.yml'), 'utf8'));
    expect(provider.providers[0].options.path).toBe('/var/lib/grafana/dashboards');
    expect(existsSync(join(ROOT, 'deploy/grafana/dashboards/fanout.json'))).toBe(true);
  });

  const dc = findTool('docker-compose');
  it.skipIf(!dc)('is a valid Compose file (docker-compose config)', () => {
    run(dc!, ['-f', join(ROOT, 'docker-compose.yml'), 'config', '-q']);
  });
});
