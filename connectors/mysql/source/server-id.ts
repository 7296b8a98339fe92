import type { MysqlSourceConfig } from './config.ts';

/**
 * The server id the binlog reader announces. Each reader needs its own: a second reader with the same id makes
 * the server drop the first. Default: a 32-bit FNV-1a hash of the pipeline name, kept away from small ids that
 * servers commonly use for themselves.
 */
export function replicaServerId(config: Pick<MysqlSourceConfig, 'server_id'>, pipeline: string): number {
  if (config.server_id !== undefined) return config.server_id;
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(`tributary:${pipeline}`, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return 100_000 + (h % (4_294_967_295 - 100_000));
}
