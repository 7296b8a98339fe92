import type { Checkpoint } from '../../../src/core/checkpoint.ts';
import type { ConnectorContext } from '../../../src/core/connector-context.ts';
import type { SourceStatus } from '../../../src/core/source.ts';
import { connect, parseMysqlUrl } from '../connection.ts';
import { binaryLogs } from '../flavor.ts';
import { compareBinlogFiles } from '../position-order.ts';
import type { MysqlSourceConfig } from './config.ts';
import { readerLockName } from './instance-lock.ts';
import { replicaServerId } from './server-id.ts';

/**
 * What the server says of a pipeline for `tributary status` without running: how much binlog it has written after
 * the checkpoint (what the pipeline has still to read), whether the checkpoint's binlog file is still there (the
 * server keeps nothing for a reader: `binlog_expire_logs_seconds` decides), and which connection holds the
 * pipeline's binlog reader, if one runs.
 */
export async function mysqlSourceStatus(
  config: MysqlSourceConfig,
  ctx: ConnectorContext,
  checkpoint: Checkpoint | null,
): Promise<SourceStatus> {
  const conn = await connect(parseMysqlUrl(config.url), config.connect_timeout_ms);
  try {
    const logs = await binaryLogs(conn);
    const lock = readerLockName(replicaServerId(config, ctx.pipeline));
    const [rows] = await conn.query('SELECT IS_USED_LOCK(?) AS holder', [lock]);
    const holder = (rows as { holder: number | string | null }[])[0]?.holder ?? null;
    const newest = logs[logs.length - 1];
    const details: Record<string, unknown> = {
      serverPosition: newest ? { file: newest.name, pos: newest.size } : null,
      oldestBinlog: logs[0]?.name ?? null,
      readerConnection: holder === null ? null : Number(holder),
    };
    const position = checkpoint?.position.kind === 'mysql' ? checkpoint.position : null;
    if (!position || checkpoint?.phase !== 'stream') return { details };
    const present = logs.some((l) => l.name === position.file);
    details.checkpointFileOnServer = present;
    if (!present) {
      return {
        details,
        warnings: [
          `the checkpoint's binlog file ${position.file} is no longer on the server (oldest: ${logs[0]?.name ?? 'none'}): ` +
            'the pipeline cannot resume from it; set resnapshot_on_purged_binlog: true or take a new snapshot, and keep ' +
            'binlogs longer than the pipeline may be stopped (binlog_expire_logs_seconds)',
        ],
      };
    }
    let behind = 0;
    for (const l of logs) {
      const order = compareBinlogFiles(l.name, position.file);
      if (order > 0) behind += l.size;
      else if (order === 0) behind += Math.max(0, l.size - position.pos);
    }
    return { details, behindBytes: behind };
  } finally {
    await conn.end().catch(() => undefined);
  }
}
