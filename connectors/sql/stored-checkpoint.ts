import { compareCoverage, comparePositions } from '../../src/checkpoint-order.ts';
import type { ChangeEvent } from '../../src/core/change-event.ts';
import { type Checkpoint, isSnapshotProgress, parseLsn, snapshotChunksEmitted } from '../../src/core/checkpoint.ts';
import { gtidCovers } from '../mysql/gtid-set.ts';

/**
 * The checkpoint row a SQL target last read or committed, and what it says is durable there already. A source
 * resends what it sent after its last acknowledgement (a crash between the target's commit and the acknowledgement,
 * a resume from an older store): what this covers is skipped, the rest applied.
 */
export class StoredCheckpoint {
  private current: Checkpoint | null = null;
  /**
   * The last event decision. Events of one transaction share their commit point (LSN, GTID, start offset): decide
   * once per transaction, not once per row (parsing a long GTID set per row would cost more than the row).
   */
  private memo = { stored: null as Checkpoint | null, gtid: '', at: '', pos: 0, covered: false };

  get(): Checkpoint | null {
    return this.current;
  }

  /** The row as just read from the target database. */
  set(cp: Checkpoint | null): void {
    this.current = cp;
  }

  /** After a commit that saved `cp`: it is now the stored one unless the stored one already covers more. */
  committed(cp: Checkpoint): void {
    const s = this.current;
    if (!s || s.position.kind !== cp.position.kind || compareCoverage(cp.position, s.position) >= 0) {
      this.current = cp;
    }
  }

  /** The whole transaction ending at this checkpoint is already durable at the target. */
  coversCheckpoint(cp: Checkpoint): boolean {
    const s = this.current;
    if (s?.phase !== 'stream' || cp.phase !== 'stream' || s.position.kind !== cp.position.kind) return false;
    const c = compareCoverage(cp.position, s.position);
    // At the position of a running snapshot's checkpoint, a checkpoint covers more chunks (or the whole snapshot).
    if (c !== 0) return c < 0;
    return !isSnapshotProgress(s) && snapshotChunksEmitted(cp) <= snapshotChunksEmitted(s);
  }

  /**
   * A streamed change of a transaction the stored checkpoint covers, known from its position alone. MySQL: by the
   * transaction's GTID when both it and the stored GTID set are there (after a failover the binlog file names are
   * another server's), by binlog file+offset otherwise.
   */
  coversEvent(ev: ChangeEvent): boolean {
    const s = this.current;
    if (s?.phase !== 'stream' || ev.source.snapshot !== false) return false;
    const p = ev.source.position;
    const sp = s.position;
    if (p.kind === 'postgres' && sp.kind === 'postgres') {
      const commitLsn = p.commitLsn;
      if (commitLsn === undefined) return false;
      return this.memoized(s, '', commitLsn, 0, () => parseLsn(commitLsn) <= parseLsn(sp.lsn));
    }
    if (p.kind === 'mysql' && sp.kind === 'mysql') {
      const gtid = p.gtid ?? '';
      return this.memoized(s, gtid, p.file, p.pos, () => {
        const byGtid = gtid !== '' && sp.gtidSet ? gtidCovers(sp.gtidSet, gtid) : undefined;
        // An event's position is the start of its transaction; the checkpoint is just after a commit.
        return byGtid ?? comparePositions({ kind: 'mysql', file: p.file, pos: p.pos }, sp) < 0;
      });
    }
    return false;
  }

  private memoized(stored: Checkpoint, gtid: string, at: string, pos: number, decide: () => boolean): boolean {
    const m = this.memo;
    if (m.stored !== stored || m.gtid !== gtid || m.at !== at || m.pos !== pos) {
      this.memo = { stored, gtid, at, pos, covered: decide() };
    }
    return this.memo.covered;
  }
}
