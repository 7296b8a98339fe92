import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/**
 * Database servers refuse to run as root. When we are root, throwaway servers run as a service account
 * (`postgres` / `mysql`), so their directories must belong to it.
 */
export function serviceAccount(name: string): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

export function chownTree(dir: string, account: { uid: number; gid: number } | undefined): void {
  if (!account) return;
  fs.chownSync(dir, account.uid, account.gid);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${entry.name}`;
    if (entry.isDirectory()) chownTree(p, account);
    else fs.chownSync(p, account.uid, account.gid);
  }
}
