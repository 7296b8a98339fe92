import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * A copy of this working tree (tracked and new files, as a clone with local changes would hold them) at `dest`,
 * with node_modules hard linked (copied across file systems), for tests that must run the product from another
 * place: a private directory, or one another OS user reads.
 */
export function copyCheckout(dest: string): void {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    encoding: 'utf8',
  })
    .split('\0')
    .filter((f) => f && fs.existsSync(f));
  for (const file of files) {
    fs.mkdirSync(path.join(dest, path.dirname(file)), { recursive: true });
    fs.copyFileSync(file, path.join(dest, file));
    fs.chmodSync(path.join(dest, file), fs.statSync(file).mode);
  }
  try {
    execFileSync('cp', ['-al', 'node_modules', path.join(dest, 'node_modules')]);
  } catch {
    execFileSync('cp', ['-a', 'node_modules', path.join(dest, 'node_modules')]);
  }
}
