/**
 * Alert rules and the Grafana dashboard: promtool checks and unit-tests the rules (where promtool is
 * installed: the Debian package `prometheus`), every fanout_* metric they use exists in a service's
 * source, the dashboard covers what operators look at, and the chart's copies match deploy/.
 */
import { readdirSync, readFileSync, statSync, writeFileSync, mkdtempSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, findTool, parseYaml, run, type Doc } from './deploy-tools.js';

const alertsText = readFileSync(join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8');
const alerts = parseYaml(alertsText);
const dashboardText = readFileSync(join(ROOT, 'deploy/grafana/dashboards/fanout.json'), 'utf8');
const dashboard = JSON.parse(dashboardText) as Doc;

/** Metric names the services define: `name: 'fanout_...'`, followCounter's names, and `fanout_..._${field}_total` families. */
function definedMetrics(): { exact: Set<string>; patterns: RegExp[] } {
  const exact = new Set<string>();
  const patterns: RegExp[] = [];
  const walk = (dir: string) => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (f === 'node_modules' || f === 'test') continue;
      if (statSync(p).isDirectory()) walk(p);
      else if (f.endsWith('.ts')) {
        const text = readFileSync(p, 'utf8');
        for (const m of text.matchAll(/'(fanout_[a-z0-9_]+)'/g)) exact.add(m[1]!);
        for (const m of text.matchAll(/`(fanout_[a-z0-9_]*)\$\{[a-z]+\}([a-z0-9_]*)`/g))
          patterns.push(new RegExp(`^${m[1]}[a-z]+${m[2]}$`));
      }
    }
  };
  walk(join(ROOT, 'services'));
  walk(join(ROOT, 'packages'));
  return { exact, patterns };
}

function usedMetrics(exprs: string[]): string[] {
  const names = new Set<string>();
  for (const e of exprs) for (const m of e.matchAll(/\b(fanout_[a-z0-9_]+)/g)) names.add(m[1]!.replace(/_(bucket|sum|count)$/, ''));
  return [...names];
}

const alertExprs = (alerts.groups as Doc[]).flatMap((g) => (g.rules as Doc[]).map((r) => r.expr as string));
const dashboardExprs = (dashboard.panels as Doc[]).flatMap((p) => ((p.targets ?? []) as Doc[]).map((t) => t.expr as string));

describe('alert rules and dashboard', () => {
  it('alert on consumer lag, slow-consumer disconnects, no live gateway in a region and webhook dead letters', () => {
    const byName = Object.fromEntries((alerts.groups as Doc[]).flatMap((g) => g.rules as Doc[]).map((r) => [r.alert, r]));
    expect(byName.FanoutKafkaConsumerLagHigh.expr).toContain('kafka_consumergroup_lag');
    expect(byName.FanoutSlowConsumerDisconnects.expr).toContain('fanout_gateway_slow_consumer_disconnects_total');
    expect(byName.FanoutNoLiveGateway.expr).toMatch(/fanout_router_gateways\) == 0/);
    expect(byName.FanoutUnownedUserPartitions.expr).toMatch(/fanout_router_unowned_partitions\) > 0/);
    expect(byName.FanoutWebhookDeadLetters.expr).toContain('fanout_webhook_dead_lettered_total');
    for (const r of Object.values(byName) as Doc[]) {
      expect(r.labels.severity, r.alert).toMatch(/^(critical|warning)$/);
      expect(r.annotations.summary, r.alert).toBeTruthy();
    }
  });

  it('use only metrics the services export', () => {
    const { exact, patterns } = definedMetrics();
    const unknown = usedMetrics([...alertExprs, ...dashboardExprs]).filter((n) => !exact.has(n) && !patterns.some((p) => p.test(n)));
    expect(unknown).toEqual([]);
  });

  it('show connections, deliveries, fan-out latency, queues, drops, Kafka lag, router lookups and webhook outcomes', () => {
    const all = dashboardExprs.join('\n');
    for (const m of [
      'fanout_gateway_connections',
      'fanout_gateway_deliveries_total',
      'fanout_gateway_fanout_latency_seconds_bucket',
      'fanout_gateway_queued_messages',
      'fanout_gateway_dropped_total',
      'kafka_consumergroup_lag',
      'fanout_router_lookups_total',
      'fanout_webhook_deliveries_total',
    ]) {
      expect(all, m).toContain(m);
    }
    // Panels never overlap (Grafana would shuffle them).
    const cells = new Set<string>();
    for (const p of dashboard.panels as Doc[]) {
      const g = p.gridPos;
      for (let x = g.x; x < g.x + g.w; x++)
        for (let y = g.y; y < g.y + g.h; y++) {
          const k = `${x},${y}`;
          expect(cells.has(k), `panel ${p.title} overlaps at ${k}`).toBe(false);
          cells.add(k);
        }
    }
  });

  it('ship the same rules and dashboard in the Helm chart as in deploy/', () => {
    expect(readFileSync(join(ROOT, 'charts/fanout/files/alerts.yml'), 'utf8')).toBe(alertsText);
    expect(readFileSync(join(ROOT, 'charts/fanout/files/fanout-dashboard.json'), 'utf8')).toBe(dashboardText);
  });

  const promtool = findTool('promtool');
  it.skipIf(!promtool)('pass promtool check rules, the rules unit tests, and check config', () => {
    expect(run(promtool!, ['check', 'rules', 'deploy/prometheus/alerts.yml'])).toMatch(/SUCCESS: \d+ rules found/);
    expect(run(promtool!, ['test', 'rules', 'deploy/prometheus/alerts.test.yml'])).toMatch(/SUCCESS/);
    // check config resolves rule_files; point it at the repository's copy.
    const dir = mkdtempSync(join(tmpdir(), 'fanout-prom-'));
    copyFileSync(join(ROOT, 'deploy/prometheus/alerts.yml'), join(dir, 'alerts.yml'));
    writeFileSync(
      join(dir, 'prometheus.yml'),
      readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8').replace('/etc/prometheus/alerts.yml', join(dir, 'alerts.yml')),
    );
    expect(run(promtool!, ['check', 'config', join(dir, 'prometheus.yml')])).toMatch(/SUCCESS/);
  });
});
