import type mysql from 'mysql2/promise';
import type { TableSchema } from '../../../src/core/change-event.ts';
import { SchemaMismatchError } from '../../../src/errors.ts';
import type { Logger } from '../../../src/observability/logger.ts';
import {
  checkTargetKey,
  type IdentityChanges,
  keysDiffer,
  planColumns,
  planIdentityChanges,
  tableRecreatedLog,
} from '../../sql/column-plan.ts';
import type { SqlTargetTable } from '../../sql/transactional-sql-target.ts';
import { quoteIdent } from '../identifiers.ts';
import { holds, isSafeMysqlType, takesLiteralDefault } from './column-types.ts';
import {
  type ColumnTypeChoice,
  type Encoder,
  encoderFor,
  type MappingOptions,
  NULLED,
  type SourceEngine,
  type TargetColumnType,
  tableColumnTypes,
  type ValueConversionError,
} from './type-mapping.ts';

type Conn = mysql.Connection | mysql.PoolConnection;

export interface TargetColumn extends TargetColumnType {
  name: string;
  encode: Encoder;
}

/** A synced target table: what the shared shell and planner need (key, identity, foreign keys), and its columns. */
export interface TargetTable extends SqlTargetTable {
  database: string;
  name: string;
  qname: string;
  /** Source columns that exist on the target, with their encoders. */
  columns: Map<string, TargetColumn>;
}

export interface SyncOptions extends MappingOptions {
  createTables: boolean;
  alterTables: boolean;
  /** Collation of created tables: binary and without padding, so keys distinct at the source stay distinct. */
  collation: string;
  flavor: 'mariadb' | 'mysql';
}

/**
 * Runs DDL (which commits implicitly in MySQL) where it cannot commit half of an open transaction. Several
 * statements run one after another on the same connection, and a COMMIT follows them when there is more than one
 * (so an UPDATE that fills an added column is durable together with the column, as far as MySQL allows).
 */
export type DdlRunner = (sql: string | string[], table: string) => Promise<void>;

interface CatalogColumn extends TargetColumnType {
  name: string;
}

async function readCatalog(
  db: Conn,
  database: string,
  table: string,
  flavor: SyncOptions['flavor'],
): Promise<{ columns: CatalogColumn[]; keys: string[] } | null> {
  const [cols] = await db.query(
    `SELECT COLUMN_NAME AS name, LOWER(DATA_TYPE) AS dataType, LOWER(COLUMN_TYPE) AS columnType
     FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [database, table],
  );
  const columns = cols as CatalogColumn[];
  if (columns.length === 0) return null;
  const [keyRows] = await db.query(
    `SELECT COLUMN_NAME AS name FROM information_schema.STATISTICS
     WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`,
    [database, table],
  );
  if (flavor === 'mariadb') {
    // MariaDB's JSON is LONGTEXT with a json_valid() check.
    const [checks] = await db.query(
      `SELECT CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS
       WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`,
      [database, table],
    );
    for (const { clause } of checks as { clause: string }[]) {
      const m = /^json_valid\(`?([^`)]+)`?\)$/i.exec(String(clause).trim());
      const col = m && columns.find((c) => c.name === m[1]);
      if (col && col.dataType === 'longtext') col.dataType = 'json';
    }
  }
  return { columns, keys: (keyRows as { name: string }[]).map((r) => r.name) };
}

/** The target column a created column type will be, as information_schema.COLUMNS will describe it. */
function plannedColumnType(sql: string): TargetColumnType {
  const columnType = sql.trim().toLowerCase();
  return { dataType: /^[a-z]+/.exec(columnType)?.[0] ?? columnType, columnType };
}

/**
 * Follows a source table rename: the target table of the old name becomes the one of the new name (when the new one
 * does not exist yet; a replay finds it done).
 */
export async function followTableRename(
  db: Conn,
  ddl: DdlRunner,
  from: { database: string; name: string },
  to: { database: string; name: string },
  flavor: SyncOptions['flavor'],
  logger: Logger,
  sourceId: string,
): Promise<void> {
  if (!(await readCatalog(db, from.database, from.name, flavor))) return;
  const toName = `${quoteIdent(to.database)}.${quoteIdent(to.name)}`;
  if (await readCatalog(db, to.database, to.name, flavor)) {
    // Left by a table of the new name dropped at the source (emptied, kept): it gives way. One with rows stops.
    const [rows] = await db.query(`SELECT 1 FROM ${toName} LIMIT 1`);
    if ((rows as unknown[]).length > 0)
      throw new SchemaMismatchError(
        `table ${sourceId}: the source renamed ${from.database}.${from.name} to ${to.database}.${to.name}, but the target has both tables and ${to.database}.${to.name} holds rows`,
        `Drop the target table ${to.database}.${to.name} (or rename it out of the way), then restart the pipeline.`,
      );
    await ddl(`DROP TABLE ${toName}`, sourceId);
  }
  await ddl(
    `RENAME TABLE ${quoteIdent(from.database)}.${quoteIdent(from.name)} TO ${quoteIdent(to.database)}.${quoteIdent(to.name)}`,
    sourceId,
  );
  logger.info({ event: 'target_table_renamed', table: sourceId, from: `${from.database}.${from.name}` });
}

/**
 * Makes the column renames and drops the source made (known by column identity): a renamed column keeps its values,
 * a dropped one goes (a column added again under its name is then added as new).
 */
async function renameAndDropColumns(ddl: DdlRunner, qname: string, sourceId: string, plan: IdentityChanges) {
  const { drops, renames } = plan;
  // One statement (MySQL's DDL is not transactional: all or nothing), through temporary names so swaps do not collide.
  const parts = drops.map((c) => `DROP COLUMN ${quoteIdent(c)}`);
  renames.forEach((r, i) => {
    parts.push(`RENAME COLUMN ${quoteIdent(r.from)} TO ${quoteIdent(`tributary_rename_${i}`)}`);
  });
  await ddl(`ALTER TABLE ${qname} ${parts.join(', ')}`, sourceId);
  if (renames.length > 0)
    await ddl(
      `ALTER TABLE ${qname} ${renames.map((r, i) => `RENAME COLUMN ${quoteIdent(`tributary_rename_${i}`)} TO ${quoteIdent(r.to)}`).join(', ')}`,
      sourceId,
    );
}

/**
 * Makes the target table able to hold rows of this source table definition: creates a missing database and table,
 * adds new columns, widens columns the source widened. A change that would need data to be rewritten or guessed
 * (a column whose target type cannot hold the source values, a different primary key) throws SchemaMismatchError
 * and changes nothing.
 */
export async function syncTable(
  db: Conn,
  ddl: DdlRunner,
  source: TableSchema,
  engine: SourceEngine,
  target: { database: string; name: string },
  options: SyncOptions,
  logger: Logger,
  /** The target table of the source table's previous name, when the source renamed it. */
  renamedFrom?: { database: string; name: string },
): Promise<TargetTable> {
  const sourceId = `${source.table.schema}.${source.table.name}`;
  const qname = `${quoteIdent(target.database)}.${quoteIdent(target.name)}`;
  const where = `table ${sourceId} -> ${target.database}.${target.name}`;
  const identity: TargetTable['identity'] =
    source.keyColumns.length > 0 ? 'key' : source.beforeImage === 'full' ? 'full' : 'none';
  const wanted: ColumnTypeChoice[] = tableColumnTypes(source.columns, engine, options);
  source.columns.forEach((c, i) => {
    if (!isSafeMysqlType(wanted[i]!.sql)) {
      throw new SchemaMismatchError(
        `${where}: the source type ${JSON.stringify(c.type)} of column ${c.name} is not one the target can use`,
        'Create the table on the target by hand and set create_tables: false.',
      );
    }
  });
  const columnDef = (i: number) => {
    const c = source.columns[i]!;
    const key = source.keyColumns.includes(c.name);
    // A NOT NULL TIMESTAMP without a default would get MariaDB's automatic ON UPDATE CURRENT_TIMESTAMP.
    const noAutoUpdate = key && /^timestamp/i.test(wanted[i]!.sql) ? " DEFAULT '1970-01-01 00:00:01'" : '';
    return `${quoteIdent(c.name)} ${wanted[i]!.sql} ${key ? 'NOT NULL' : 'NULL'}${noAutoUpdate}`;
  };
  const logLossy = (indexes: number[]) => {
    for (const i of indexes) {
      const lossy = wanted[i]!.lossy;
      if (lossy) {
        logger.info({
          event: 'target_column_mapped_lossy',
          table: sourceId,
          column: source.columns[i]!.name,
          type: wanted[i]!.sql,
          lossy,
        });
      }
    }
  };

  if (renamedFrom) await followTableRename(db, ddl, renamedFrom, target, options.flavor, logger, sourceId);
  let catalog = await readCatalog(db, target.database, target.name, options.flavor);
  // Renames and drops by identity first (a replay finds them done), so the columns below are compared by name.
  const identityChanges =
    catalog &&
    source.changes &&
    planIdentityChanges(
      where,
      source.changes,
      catalog.columns.map((c) => c.name),
      { alterTables: options.alterTables, namesIgnoreCase: true },
    );
  if (identityChanges) {
    await renameAndDropColumns(ddl, qname, sourceId, identityChanges);
    logger.info({
      event: 'target_columns_changed',
      table: where,
      dropped: identityChanges.drops,
      renamed: identityChanges.renames,
    });
    catalog = await readCatalog(db, target.database, target.name, options.flavor);
  }
  if (catalog && options.alterTables && keysDiffer(source.keyColumns, catalog.keys)) {
    const [rows] = await db.query(`SELECT 1 FROM ${qname} LIMIT 1`);
    if ((rows as unknown[]).length === 0) {
      await ddl(`DROP TABLE ${qname}`, sourceId);
      logger.warn(tableRecreatedLog(where, source.keyColumns, catalog.keys));
      catalog = null;
    }
  }
  if (!catalog) {
    if (!options.createTables) {
      throw new SchemaMismatchError(
        `${where}: the target table does not exist`,
        'Create it on the target, or set create_tables: true to let the pipeline create it.',
      );
    }
    const cols = source.columns.map((_, i) => columnDef(i));
    if (source.keyColumns.length > 0) cols.push(`PRIMARY KEY (${source.keyColumns.map(quoteIdent).join(', ')})`);
    // Only when missing: MySQL's CREATE DATABASE IF NOT EXISTS waits for an exclusive lock on the database even when
    // it exists, which the open apply transaction (rows of other tables in it) holds against it.
    const [schemata] = await db.query('SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [
      target.database,
    ]);
    if ((schemata as unknown[]).length === 0) {
      await ddl(
        `CREATE DATABASE IF NOT EXISTS ${quoteIdent(target.database)} CHARACTER SET utf8mb4 COLLATE ${options.collation}`,
        sourceId,
      );
    }
    await ddl(
      `CREATE TABLE IF NOT EXISTS ${qname} (${cols.join(', ')}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=${options.collation}`,
      sourceId,
    );
    logger.info({ event: 'target_table_created', table: sourceId, target: `${target.database}.${target.name}` });
    logLossy(source.columns.map((_, i) => i));
    catalog = await readCatalog(db, target.database, target.name, options.flavor);
    if (!catalog) throw new SchemaMismatchError(`${where}: the created table is not visible`, 'Check the target.');
  } else {
    checkTargetKey(where, source.keyColumns, catalog.keys);
    const steps = planColumns({
      where,
      columns: source.columns,
      wantedType: (i) => wanted[i]!.sql,
      existing: new Map(catalog.columns.map((c) => [c.name, c])),
      fit: (col, i, have) => {
        const want = wanted[i]!.sql;
        if (!encoderFor(col, engine, have, options))
          return {
            kind: 'unusable',
            mismatch: `column ${col.name} is ${col.type} at the source but ${have.columnType} on the target`,
          };
        if (holds(have.columnType, want) !== false) return { kind: 'holds' };
        const mismatch = `column ${col.name} needs ${want} but is ${have.columnType} on the target`;
        return { kind: holds(want, have.columnType) === true ? 'widens' : 'differs', mismatch };
      },
      alterTables: options.alterTables,
    });
    const changes: string[] = [];
    const changed: number[] = [];
    // Added columns whose existing rows read a value at the source: a DEFAULT dropped right after, or (types that
    // take no literal default) an UPDATE of the existing rows.
    const dropDefaults: string[] = [];
    const fills: [string, string][] = [];
    const emptied: string[] = [];
    const existingRowsLiteral = (i: number, value: string): string | null => {
      const col = source.columns[i]!;
      const encode = encoderFor(col, engine, plannedColumnType(wanted[i]!.sql), options);
      try {
        const literal = encode?.(value);
        if (literal === undefined) throw new Error(`no conversion to ${wanted[i]!.sql}`);
        return literal === NULLED ? null : literal;
      } catch (err) {
        throw new SchemaMismatchError(
          `${where}: the value existing source rows read for the added column ${col.name} cannot be stored in ${wanted[i]!.sql}: ${(err as Error).message}`,
          (err as ValueConversionError).hint ?? 'Add the column on the target by hand (and fill it), then restart.',
        );
      }
    };
    for (const step of steps) {
      const { column: col, index: i } = step;
      if (step.kind === 'drop') {
        changes.push(`DROP COLUMN ${quoteIdent(col.name)}`);
        continue;
      }
      changed.push(i);
      if (step.kind === 'add') {
        const literal = step.existingRowsValue === null ? null : existingRowsLiteral(i, step.existingRowsValue);
        if (literal !== null && !takesLiteralDefault(plannedColumnType(wanted[i]!.sql).dataType)) {
          changes.push(`ADD COLUMN ${columnDef(i)}`);
          fills.push([col.name, literal]);
        } else if (literal !== null) {
          changes.push(`ADD COLUMN ${columnDef(i)} DEFAULT ${literal}`);
          dropDefaults.push(`ALTER COLUMN ${quoteIdent(col.name)} DROP DEFAULT`);
        } else changes.push(`ADD COLUMN ${columnDef(i)}`);
        continue;
      }
      // A retyped column's old values need not convert exactly (the source copies the table again): they are emptied
      // first, but for a key column's (it must stay unique until the copy).
      if (step.kind === 'retype' && !step.keepValues) emptied.push(`${quoteIdent(col.name)} = NULL`);
      changes.push(`MODIFY COLUMN ${columnDef(i)}`);
    }
    if (changes.length > 0) {
      // Replicated rows carry every column: a default only gives the existing rows their value and must not stay.
      await ddl(
        [
          ...(emptied.length > 0 ? [`UPDATE ${qname} SET ${emptied.join(', ')}`] : []),
          `ALTER TABLE ${qname} ${changes.join(', ')}`,
          ...(dropDefaults.length > 0 ? [`ALTER TABLE ${qname} ${dropDefaults.join(', ')}`] : []),
          ...(fills.length > 0
            ? [`UPDATE ${qname} SET ${fills.map(([c, v]) => `${quoteIdent(c)} = ${v}`).join(', ')}`]
            : []),
        ],
        sourceId,
      );
      logger.info({
        event: 'target_table_altered',
        table: sourceId,
        changes: [...changes, ...fills.map(([c]) => `existing rows given the source's value of ${c}`)],
      });
      logLossy(changed);
      catalog = (await readCatalog(db, target.database, target.name, options.flavor))!;
    }
  }

  const byName = new Map(catalog.columns.map((c) => [c.name, c]));
  const columns = new Map<string, TargetColumn>();
  for (const col of source.columns) {
    const have = byName.get(col.name);
    if (!have) continue;
    const encode = encoderFor(col, engine, have, options);
    if (!encode) {
      throw new SchemaMismatchError(
        `${where}: column ${col.name} is ${col.type} at the source but ${have.columnType} on the target`,
        'Change the target column so it holds the source values, then restart the pipeline.',
      );
    }
    columns.set(col.name, { ...have, name: col.name, encode });
  }
  const [fk] = await db.query(
    `SELECT 1 AS x FROM information_schema.KEY_COLUMN_USAGE
     WHERE REFERENCED_TABLE_NAME IS NOT NULL
       AND ((TABLE_SCHEMA = ? AND TABLE_NAME = ?) OR (REFERENCED_TABLE_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?))
     LIMIT 1`,
    [target.database, target.name, target.database, target.name],
  );
  return {
    sourceId,
    database: target.database,
    name: target.name,
    qname,
    keyColumns: [...source.keyColumns],
    identity,
    columns,
    hasForeignKeys: (fk as unknown[]).length > 0,
  };
}
