import { SYSTEM_DATABASES } from '../flavor.ts';
import type { MysqlSourceConfig } from './config.ts';

/**
 * Which tables a MySQL/MariaDB pipeline replicates (`databases`, `tables`, or every non-system database), and which
 * the binlog reader must read: those plus the signal table, whose rows are requests to the pipeline, never data.
 */
export class TableFilter {
  private readonly signal: string | undefined;

  constructor(private readonly config: Pick<MysqlSourceConfig, 'databases' | 'tables' | 'signal_table'>) {
    this.signal = config.signal_table;
  }

  /** Whether the pipeline replicates `db.name`. */
  replicates(db: string, name: string): boolean {
    if (this.isSignalTable(db, name)) return false;
    const { databases, tables } = this.config;
    if (!databases && !tables) return !SYSTEM_DATABASES.includes(db.toLowerCase());
    return (databases ?? []).includes(db) || (tables ?? []).includes(`${db}.${name}`);
  }

  isSignalTable(db: string, name: string): boolean {
    return this.signal === `${db}.${name}`;
  }

  /** The binlog reader's include/exclude lists (by database, then table). */
  readerFilter(): { include?: Record<string, string[] | true>; exclude?: Record<string, string[] | true> } {
    const { databases, tables } = this.config;
    if (!databases && !tables) return { exclude: Object.fromEntries(SYSTEM_DATABASES.map((d) => [d, true])) };
    const include: Record<string, string[] | true> = {};
    for (const db of databases ?? []) include[db] = true;
    for (const t of [...(tables ?? []), ...(this.signal ? [this.signal] : [])]) {
      const dot = t.indexOf('.');
      const db = t.slice(0, dot);
      const cur = include[db];
      if (cur === true) continue;
      include[db] = [...(cur ?? []), t.slice(dot + 1)];
    }
    return { include };
  }
}
