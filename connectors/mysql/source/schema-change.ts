/**
 * Table DDL the MySQL source follows by an event the targets already apply: a dropped table becomes a `truncate` of
 * it, so a table re-created under the same name starts empty at the target as it does at the source.
 */

import type { ChangeEvent, SourceInfo, TableSchema } from '../../../src/core/change-event.ts';
import type { DdlTable } from './ddl.ts';

/**
 * The `truncate` event standing for `DROP TABLE` of a replicated table. `schema` is the table as last seen: a target
 * checks its key and columns (and creates the table when it never saw it) before emptying it.
 */
export function droppedTableEvent(
  table: DdlTable,
  schema: TableSchema,
  ev: { gtid?: string; timestampMs: number },
  position: SourceInfo['position'],
): ChangeEvent {
  const ref = { schema: table.db, name: table.name };
  return {
    op: 'truncate',
    table: ref,
    schema,
    key: null,
    before: null,
    after: null,
    source: {
      connector: 'mysql',
      db: table.db,
      position,
      txId: ev.gtid,
      commitTimeMs: ev.timestampMs,
      snapshot: false,
    },
    truncate: { cascade: false, restartIdentity: false },
  };
}
