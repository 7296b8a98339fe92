import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * A copy of this working tree (tracked and new files, as a clone with local changes would hold them) at `dest`,
 * with node_modules hard linked (copied across file systems), for tests that must run the product from another
 * place: a private directory, or one another OS user reads. The build in dist/ comes along with every file's
 * modification time kept, as `npm install` leaves a checkout: there as here it counts only when it is at least as
 * new as the sources (bin/compiled-build.js). Without it, the first `npx tributary` there ran the prepare script's
 * full build (npx installs the checkout into its cache), which a loaded machine stretched past the test's timeout.
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
