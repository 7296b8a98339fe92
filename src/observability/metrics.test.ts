import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PipelineMetrics } from './metrics.ts';

const metricNames = async () => {
  const metrics = new PipelineMetrics();
  metrics.pipelineStatuses = () => [{ pipeline: 'p', status: 'running' }];
  return (await metrics.registry.getMetricsAsJSON()).map((m) => ({ name: m.name, type: String(m.type) }));
};

describe('metrics', () => {
  it('are named by Prometheus conventions: units in the name, _total on counters, standard process metrics', async () => {
    const metrics = await metricNames();
    for (const { name, type } of metrics) {
      expect(name).toMatch(/^[a-z][a-z0-9_]*$/);
      expect(name).not.toMatch(/process_process|tributary_process_/);
      if (type === 'counter') expect(name).toMatch(/_total$/);
    }
    const names = metrics.map((m) => m.name);
    expect(names).toContain('process_cpu_seconds_total');
    expect(names).toContain('process_resident_memory_bytes');
    expect(names).toContain('nodejs_eventloop_lag_p99_seconds');
  });

  it('every tributary metric is documented, and the Grafana dashboard charts only metrics that exist', async () => {
    const names = new Set((await metricNames()).map((m) => m.name));
    const docs = fs.readFileSync('docs/operations.md', 'utf8');
    for (const name of names) if (name.startsWith('tributary_')) expect(docs).toContain(`\`${name}\``);
    const dashboard = JSON.parse(fs.readFileSync('deploy/grafana-dashboard.json', 'utf8')) as {
      panels: { targets: { expr: string }[] }[];
    };
    const used = dashboard.panels.flatMap((p) =>
      p.targets.flatMap((t) => t.expr.match(/\b(?:tributary|process|nodejs)_[a-z0-9_]+/g) ?? []),
    );
    expect(used.length).toBeGreaterThan(10);
    for (const metric of used) expect(names, metric).toContain(metric.replace(/_(bucket|sum|count)$/, ''));
  });
});
