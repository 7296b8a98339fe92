import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * A copy of this working tree (tracked and new files, as a clone with local changes would hold them) at `dest`,
 * with node_modules hard linked (copied across file systems), for tests that must run the product from another
 * place: a private directory, or one another OS user reads. The build in dist/ comes along with every file's
 * modification time kept, as `npm install` leaves a checkout: bin/tributary.js runs it when it is at least as new as
 * the sources, as it does here (a stale build is ignored there as here). Without it, every run there compiled the
 * sources through tsx, several times slower, which a loaded machine stretched past the test's timeout.
 */
export function copyCheckout(dest: string): void {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    encoding: 'utf8',
  })
    .split('\0')
    .filter((f) => f && fs.existsSync(f));
  for (const file of files) {
    fs.mkdirSync(path.join(dest, path.dirname(file)), { recursive: true });
    const stat = fs.statSync(file);
    fs.copyFileSync(file, path.join(dest, file));
    fs.chmodSync(path.join(dest, file), stat.mode);
    fs.utimesSync(path.join(dest, file), stat.atime, stat.mtime);
  }
  if (fs.existsSync('dist')) execFileSync('cp', ['-a', 'dist', path.join(dest, 'dist')]);
  try {
    execFileSync('cp', ['-al', 'node_modules', path.join(dest, 'node_modules')]);
  } catch {
    execFileSync('cp', ['-a', 'node_modules', path.join(dest, 'node_modules')]);
  }
}
