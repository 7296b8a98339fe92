/**
 * Which checkpoint covers which, for every kind of position: the rules are here, each engine's order in its wing
 * (PostgreSQL: LSNs; MySQL/MariaDB: binlog files and GTID sets in connectors/mysql/position-order.ts).
 */
import { compareMysqlCoverage, compareMysqlPositions } from '../connectors/mysql/position-order.ts';
import { type Checkpoint, type CheckpointPosition, parseLsn } from './core/checkpoint.ts';

/**
 * Orders two positions of the same kind: negative if a is before b, 0 if equal, positive if after. MySQL positions
 * compare by binlog file then offset, which means something only within one server's binlogs (see `compareCoverage`).
 */
export function comparePositions(a: CheckpointPosition, b: CheckpointPosition): number {
  if (a.kind === 'postgres' && b.kind === 'postgres') {
    const x = parseLsn(a.lsn);
    const y = parseLsn(b.lsn);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.kind === 'mysql' && b.kind === 'mysql') return compareMysqlPositions(a, b);
  throw new Error(`cannot compare a ${a.kind} position with a ${b.kind} position`);
}

/**
 * Whether position `a` reaches past `stored`, by what each covers: negative when `stored` covers all of `a` and more
 * (a replay), 0 when they cover the same, positive when `a` holds something `stored` does not (it may replace it).
 * MySQL positions that both carry a GTID set compare by the sets (file+offset means nothing across servers); equal
 * sets, unreadable sets and positions without sets compare by `comparePositions`. Not an order: two GTID sets may
 * each hold what the other lacks, and then either is positive against the other.
 */
export function compareCoverage(a: CheckpointPosition, stored: CheckpointPosition): number {
  if (a.kind === 'mysql' && stored.kind === 'mysql') return compareMysqlCoverage(a, stored);
  return comparePositions(a, stored);
}

/** True when `next` would move the checkpoint backwards (a snapshot checkpoint never replaces a stream one). */
export function isBackwards(current: Checkpoint, next: Checkpoint): boolean {
  if (current.phase === 'stream' && next.phase === 'snapshot') return true;
  if (current.phase !== next.phase) return false;
  if (current.position.kind !== next.position.kind) return false;
  return compareCoverage(next.position, current.position) < 0;
}

/**
 * Whether a database checkpoint store may replace `stored` with `next`: never with one it covers, and at the same
 * position never from `stream` back to `snapshot`.
 */
export function advances(stored: Checkpoint | null, next: Checkpoint): boolean {
  if (!stored || stored.position.kind !== next.position.kind) return true;
  const c = compareCoverage(next.position, stored.position);
  if (c !== 0) return c > 0;
  return !(stored.phase === 'stream' && next.phase === 'snapshot');
}

/** The later of two checkpoints of one pipeline (either may be missing). */
export function laterCheckpoint(a: Checkpoint | null, b: Checkpoint | null): Checkpoint | null {
  if (!a) return b;
  if (!b) return a;
  return isBackwards(a, b) ? a : b;
}
