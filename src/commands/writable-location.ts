import fs from 'node:fs';
import path from 'node:path';

/**
 * Why a file cannot be created or replaced at `file`, or undefined when it can. It tries for real (a probe directory
 * created and removed in the nearest existing parent), since permission bits say little to root, or about /proc,
 * read-only mounts and full disks. Nothing is left behind.
 */
export function unwritableReason(file: string): string | undefined {
  try {
    const stat = fs.statSync(file);
    if (stat.isDirectory()) return `${file} is a directory`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return `${file}: ${(err as Error).message}`;
  }
  let dir = path.dirname(file);
  for (;;) {
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return `${dir}: ${(err as Error).message}`;
    }
    if (stat && !stat.isDirectory()) return `${dir} is not a directory`;
    if (stat) break;
    const parent = path.dirname(dir);
    if (parent === dir) return `no existing directory above ${file}`;
    dir = parent;
  }
  try {
    fs.rmdirSync(fs.mkdtempSync(path.join(dir, '.tributary-probe-')));
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return `cannot create files in ${dir} (${code ?? (err as Error).message})`;
  }
}
