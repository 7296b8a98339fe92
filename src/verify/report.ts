import type { Difference, PipelineReport, TableReport, VerifyReport } from './types.ts';

function short(value: string | null | undefined, max = 60): string {
  if (value === null || value === undefined) return 'NULL';
  const text = JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 4)}..."` : text;
}

function describeKey(d: Difference): string {
  return Object.entries(d.key ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

export function formatDifference(d: Difference): string {
  if (!d.key) {
    const row = d.source ?? d.target ?? {};
    const values = Object.entries(row)
      .map(([k, v]) => `${k}=${short(v, 30)}`)
      .join(', ');
    return `${d.kind === 'missing_at_target' ? 'missing at target' : 'extra at target'}: row (${values}) occurs ${d.source_count} time(s) at the source, ${d.target_count} at the target`;
  }
  switch (d.kind) {
    case 'missing_at_target':
      return `missing at target: ${describeKey(d)}`;
    case 'extra_at_target':
      return `extra at target:   ${describeKey(d)}`;
    default:
      return `different values:  ${describeKey(d)} (${(d.columns ?? [])
        .map((c) => `${c}: ${short(d.source?.[c])} -> ${short(d.target?.[c])}`)
        .join('; ')})`;
  }
}

export function formatTable(t: TableReport): string {
  const head = t.source === t.target ? t.source : `${t.source} -> ${t.target}`;
  if (t.status === 'error') return `${head}: ERROR ${t.error?.replaceAll('\n', '\n    ')}\n`;
  const how = t.key ? `key (${t.key.join(', ')})` : 'no key: compared as a multiset of rows';
  const counts = `${t.source_rows} rows at the source, ${t.target_rows} at the target`;
  const lines = [
    `${head}: ${t.status === 'equal' ? 'equal' : 'DIFFERENT'} (${counts}; ${how}; ${t.ranges} ${t.key ? 'ranges' : 'buckets'}, ${t.differing_ranges} differing; ${t.seconds} s)`,
  ];
  for (const note of t.schema_notes ?? []) lines.push(`  note: ${note}`);
  if (t.loose_columns?.length) lines.push(`  compared loosely: ${t.loose_columns.join(', ')}`);
  for (const d of t.differences) lines.push(`  ${formatDifference(d)}`);
  if (t.truncated) lines.push(`  ... more differences not listed (raise --max-diffs)`);
  return `${lines.join('\n')}\n`;
}

export function formatPipelineHeader(p: { name: string }): string {
  return `pipeline ${p.name}:\n`;
}

export function formatSummary(report: VerifyReport): string {
  const tables = report.pipelines.flatMap((p: PipelineReport) => p.tables);
  const count = (s: string) => tables.filter((t) => t.status === s).length;
  return `${tables.length} table(s): ${count('equal')} equal, ${count('different')} different, ${count('error')} error(s)\n`;
}
