import type { PipelineConfig } from '../config/schema.ts';
import { parseQualifiedName } from '../config/table-name.ts';
import { describeError, TributaryError } from '../errors.ts';
import { redactUrl } from '../observability/logger.ts';
import { compareKeyed, compareKeyless } from './compare-table.ts';
import { connect, type Db } from './db.ts';
import type { Dialect } from './dialect.ts';
import { mysqlDialect } from './mysql-dialect.ts';
import { planTable } from './plan.ts';
import { postgresDialect } from './postgres-dialect.ts';
import { targetTableFor } from './table-map.ts';
import {
  type Engine,
  type PipelineReport,
  type TableName,
  type TableReport,
  type TableStatus,
  tableLabel,
} from './types.ts';

export interface VerifyOptions {
  /** Only these source tables (schema.table, or a table name when it is unique). */
  tables?: string[];
  maxDiffs: number;
  rangeRows?: number;
  onProgress?(table: string, done: number, total: number): void;
  /** Called when a table is done (for streaming text output). */
  onTable?(report: TableReport): void;
}

const DATABASE_TARGETS = new Set(['postgres', 'mysql']);

export function worst(statuses: TableStatus[]): TableStatus {
  if (statuses.includes('error')) return 'error';
  if (statuses.includes('different')) return 'different';
  return 'equal';
}

function dialectFor(db: Db): Dialect {
  return db.engine === 'postgres' ? postgresDialect(db) : mysqlDialect();
}

/** Whether verify can compare this pipeline (its target is a database). */
export function hasDatabaseTarget(pipeline: PipelineConfig): boolean {
  return DATABASE_TARGETS.has(pipeline.target.type);
}

/** Compares every replicated table of one pipeline between its source and its target. */
export async function verifyPipeline(pipeline: PipelineConfig, options: VerifyOptions): Promise<PipelineReport> {
  const report: PipelineReport = { name: pipeline.name, status: 'equal', tables: [] };
  if (!hasDatabaseTarget(pipeline)) {
    report.status = 'error';
    report.error = `pipeline ${pipeline.name}: verify needs a database target (postgres or mysql); this pipeline writes to ${pipeline.target.type}`;
    return report;
  }
  const target = pipeline.target as { type: Engine; url: string; connect_timeout_ms?: number };
  const source = pipeline.source;
  let sdb: Db | undefined;
  let tdb: Db | undefined;
  try {
    const [s, t] = await Promise.allSettled([
      connect(source.type, source.url, 'source', source.connect_timeout_ms),
      connect(target.type, target.url, 'target', target.connect_timeout_ms),
    ]);
    if (s.status === 'fulfilled') sdb = s.value;
    if (t.status === 'fulfilled') tdb = t.value;
    if (s.status === 'rejected') throw s.reason;
    if (t.status === 'rejected') throw t.reason;
    if (!sdb || !tdb) throw new Error('unreachable');
    const sd = dialectFor(sdb);
    const td = dialectFor(tdb);
    const scope =
      source.type === 'mysql' ? { tables: source.tables, databases: source.databases } : { tables: source.tables };
    let tables = await sd.listTables(sdb, scope);
    if (options.tables?.length) tables = selectTables(tables, options.tables);
    for (const table of tables) {
      const t = await verifyTable(pipeline, { db: sdb, dialect: sd }, { db: tdb, dialect: td }, table, options);
      report.tables.push(t);
      options.onTable?.(t);
    }
    report.status = worst(report.tables.map((t) => t.status));
  } catch (err) {
    report.status = 'error';
    report.error = redactUrl(describeError(err));
  } finally {
    await Promise.all([sdb?.close(), tdb?.close()]);
  }
  return report;
}

function selectTables(all: TableName[], wanted: string[]): TableName[] {
  const out: TableName[] = [];
  for (const w of wanted) {
    const wanted = parseQualifiedName(w);
    const matches = all.filter((t) =>
      wanted ? t.schema === wanted.schema && t.name === wanted.name : tableLabel(t) === w || t.name === w,
    );
    if (matches.length === 0)
      throw new TributaryError('operator', `table ${w} is not among the tables this pipeline replicates`, {
        hint: `tables of the pipeline: ${all.map(tableLabel).join(', ') || '(none)'}`,
      });
    if (matches.length > 1)
      throw new TributaryError('operator', `table ${w} is ambiguous`, {
        hint: `name it with its schema: ${matches.map(tableLabel).join(', ')}`,
      });
    if (!out.includes(matches[0]!)) out.push(matches[0]!);
  }
  return out;
}

async function verifyTable(
  pipeline: PipelineConfig,
  src: { db: Db; dialect: Dialect },
  tgt: { db: Db; dialect: Dialect },
  table: TableName,
  options: VerifyOptions,
): Promise<TableReport> {
  const started = performance.now();
  const targetTable = targetTableFor(pipeline.target, table);
  const report: TableReport = {
    source: tableLabel(table),
    target: tableLabel(targetTable),
    status: 'equal',
    key: null,
    differences: [],
  };
  try {
    // Each side sees one snapshot of the table for the whole comparison (counts, ranges and bisection agree).
    await src.db.snapshot(() => tgt.db.snapshot(() => compareTable(src, tgt, table, targetTable, report, options)));
  } catch (err) {
    report.status = 'error';
    report.error = redactUrl(describeError(err));
  }
  report.seconds = Math.round((performance.now() - started) / 10) / 100;
  return report;
}

async function compareTable(
  src: { db: Db; dialect: Dialect },
  tgt: { db: Db; dialect: Dialect },
  table: TableName,
  targetTable: TableName,
  report: TableReport,
  options: VerifyOptions,
): Promise<void> {
  const [sdef, tdef] = await Promise.all([
    src.dialect.describeTable(src.db, table),
    tgt.dialect.describeTable(tgt.db, targetTable),
  ]);
  if (!sdef)
    throw new TributaryError('operator', `source table ${tableLabel(table)} does not exist`, {
      hint: 'check source.tables in the config',
    });
  if (!tdef)
    throw new TributaryError('operator', `table ${tableLabel(targetTable)} does not exist at the target`, {
      hint: 'the pipeline has not created it yet (has it run?), or the target renames it (target schema / tables)',
    });
  const plan = planTable({ ...src, def: sdef }, { ...tgt, def: tdef });
  report.key = plan.key.length ? plan.key : null;
  if (plan.loose.length) report.loose_columns = plan.loose;
  if (plan.notes.length) report.schema_notes = plan.notes;
  const compare = plan.key.length ? compareKeyed : compareKeyless;
  const result = await compare(plan, {
    maxDiffs: options.maxDiffs,
    rangeRows: options.rangeRows,
    onProgress: (done, total) => options.onProgress?.(report.source, done, total),
  });
  report.source_rows = result.sourceRows;
  report.target_rows = result.targetRows;
  report.ranges = result.ranges;
  report.differing_ranges = result.differingRanges;
  report.differences = result.differences;
  if (result.truncated) report.truncated = true;
  const differs =
    result.sourceRows !== result.targetRows || result.differingRanges > 0 || plan.missingColumns.length > 0;
  report.status = differs ? 'different' : 'equal';
}
