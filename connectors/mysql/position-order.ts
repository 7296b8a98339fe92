import type { CheckpointPosition } from '../../src/core/checkpoint.ts';
import { gtidSetCovers } from './gtid-set.ts';

type MysqlPosition = Extract<CheckpointPosition, { kind: 'mysql' }>;

/**
 * Orders binlog file names `base.NNNNNN` by their number: after `binlog.999999` comes `binlog.1000000`, which sorts
 * before it as text. Names of different bases (another server's files) compare as text.
 */
export function compareBinlogFiles(a: string, b: string): number {
  const x = /^(.*)\.(\d+)$/.exec(a);
  const y = /^(.*)\.(\d+)$/.exec(b);
  if (x && y && x[1] === y[1]) {
    const m = BigInt(x[2]!);
    const n = BigInt(y[2]!);
    if (m !== n) return m < n ? -1 : 1;
  }
  return a === b ? 0 : a < b ? -1 : 1;
}

/**
 * Orders two binlog positions by file then offset (GTID sets are not totally ordered). That order holds only within
 * the binlogs of one server: after a resume by GTID set on another server (a failover to a replica, whose binlog
 * files are its own), a file+offset compares with one of the old server without meaning, either way. When both
 * sides carry GTIDs, decide by them (`compareMysqlCoverage`, `gtidCovers`).
 */
export function compareMysqlPositions(a: Pick<MysqlPosition, 'file' | 'pos'>, b: Pick<MysqlPosition, 'file' | 'pos'>) {
  if (a.file !== b.file) return compareBinlogFiles(a.file, b.file);
  return a.pos - b.pos;
}

/**
 * Whether position `a` reaches past `stored`, by what each covers: by the GTID sets when both carry one (file+offset
 * means nothing across servers); equal sets, unreadable sets and positions without sets compare by file+offset.
 */
export function compareMysqlCoverage(a: MysqlPosition, stored: MysqlPosition): number {
  if (a.gtidSet && stored.gtidSet) {
    const covered = gtidSetCovers(stored.gtidSet, a.gtidSet);
    if (covered === false) return 1;
    // Equal sets: no transaction lies between them, so either answer is harmless; file+offset keeps one server's
    // checkpoints moving over binlog events that are not transactions.
    if (covered === true && gtidSetCovers(a.gtidSet, stored.gtidSet) === false) return -1;
  }
  return compareMysqlPositions(a, stored);
}
