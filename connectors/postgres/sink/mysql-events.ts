/**
 * The step in front of the apply planner for events from a MySQL / MariaDB source: their table definitions in the
 * PostgreSQL types of type-mapping.ts, and their values in forms those types accept (zero dates per
 * `mysql_zero_dates`), with the columns that lose something and the nulled dates reported.
 */
import type { ChangeEvent, TableSchema } from '../../../src/core/change-event.ts';
import type { Logger } from '../../../src/observability/logger.ts';
import { MysqlValueConverter, mappedSchema, type NulledValue, pgColumnType } from './type-mapping.ts';

export class MysqlEventConversion {
  private readonly values: MysqlValueConverter;
  private readonly reportedLossy = new Set<string>();
  /** Values nulled per `mysql_zero_dates: "null"`, per `table.column`: total, and not yet reported. */
  private readonly zeroDatesNulled = new Map<string, { total: number; unreported: number }>();
  private zeroDatesReportedAt = 0;

  constructor(
    zeroDates: 'error' | 'null',
    private readonly logger: Logger,
  ) {
    this.values = new MysqlValueConverter(zeroDates, (schema, nulled) => this.zeroDateNulled(schema, nulled));
  }

  /** The table definition in PostgreSQL types; names, once per column, what the mapping does not keep. */
  schema(schema: TableSchema): TableSchema {
    this.reportLossyColumns(schema);
    return mappedSchema(schema);
  }

  /** The event with the values the mapped PostgreSQL types do not accept converted (the same event otherwise). */
  event(ev: ChangeEvent): ChangeEvent {
    const s = ev.schema;
    if (!this.values.columnsToConvert(s)) return ev;
    const before = this.values.convertRow(s, ev.before);
    const after = this.values.convertRow(s, ev.after);
    const key = this.values.convertRow(s, ev.key);
    if (before === ev.before && after === ev.after && key === ev.key) return ev;
    return { ...ev, before, after, key };
  }

  /** Counts of nulled MySQL dates per column since the last report, at most once a minute (and when forced). */
  report(force = false): void {
    if (this.zeroDatesNulled.size === 0) return;
    if (!force && Date.now() - this.zeroDatesReportedAt < 60_000) return;
    const columns: Record<string, { rows: number; total: number }> = {};
    for (const [id, c] of this.zeroDatesNulled) {
      if (c.unreported === 0) continue;
      columns[id] = { rows: c.unreported, total: c.total };
      c.unreported = 0;
    }
    if (Object.keys(columns).length === 0) return;
    this.zeroDatesReportedAt = Date.now();
    this.logger.warn({ event: 'target_mysql_zero_dates_nulled', columns });
  }

  /** Names, once per table, the MySQL columns whose PostgreSQL type does not keep everything (docs/type-mapping.md). */
  private reportLossyColumns(schema: TableSchema): void {
    const id = `${schema.table.schema}.${schema.table.name}`;
    for (const c of schema.columns) {
      const { type, lossy } = pgColumnType(c);
      const seen = `${id}.${c.name}:${c.type}`;
      if (!lossy || this.reportedLossy.has(seen)) continue;
      this.reportedLossy.add(seen);
      this.logger.info({
        event: 'target_column_mapped_lossy',
        table: id,
        column: c.name,
        source_type: c.type,
        type,
        lossy,
      });
    }
  }

  private zeroDateNulled(schema: TableSchema, nulled: NulledValue): void {
    const table = `${schema.table.schema}.${schema.table.name}`;
    const id = `${table}.${nulled.column}`;
    let count = this.zeroDatesNulled.get(id);
    if (!count) {
      count = { total: 0, unreported: 0 };
      this.zeroDatesNulled.set(id, count);
      this.logger.warn({
        event: 'target_mysql_zero_date_nulled',
        table,
        column: nulled.column,
        value: nulled.value,
        key: Object.fromEntries(schema.keyColumns.map((k) => [k, nulled.row[k]])),
        hint: 'mysql_zero_dates is null: MySQL dates PostgreSQL has no value for are stored as NULL in this column. Counts follow in target_mysql_zero_dates_nulled.',
      });
    }
    count.total++;
    count.unreported++;
  }
}
