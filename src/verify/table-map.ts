import type { TargetConfig } from '../config/schema.ts';
import { parseTableName } from './dialect.ts';
import type { TableName } from './types.ts';

/**
 * The renaming options a database target may have. Read structurally, so a target type that gains them later
 * (e.g. MySQL) is followed without a change here.
 */
interface RenameOptions {
  /** Target schema (PostgreSQL) or database (MySQL) for every table, keeping the table name. */
  schema?: string;
  database?: string;
  /** source schema.table -> target schema.table; takes precedence over schema. */
  tables?: Record<string, string>;
}

/**
 * Where the target keeps a source table: the `tables` map of the target config first, then its `schema` (or
 * `database`), else the same schema.table (a MySQL source database becomes the PostgreSQL schema of the same name and
 * the other way around).
 */
export function targetTableFor(target: TargetConfig, source: TableName): TableName {
  const options = target as RenameOptions;
  const renamed = options.tables?.[`${source.schema}.${source.name}`];
  if (renamed) return parseTableName(renamed);
  const schema = options.schema ?? options.database;
  if (schema) return { schema, name: source.name };
  return { ...source };
}
