// Whether dist/ holds a build at least as new as every TypeScript source and build setting. The entry point runs the
// build only then (else it loads the sources, so an edit never runs stale code), and `npm install` builds only when it
// is not (see scripts/build-when-stale.js).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const stamp = path.join(root, 'dist', '.build-stamp');

function newestSource(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

export function compiledIsFresh() {
  try {
    const built = fs.statSync(stamp).mtimeMs;
    const settings = ['tsconfig.json', 'tsconfig.build.json'].map((f) => fs.statSync(path.join(root, f)).mtimeMs);
    return (
      built >= Math.max(newestSource(path.join(root, 'src')), newestSource(path.join(root, 'connectors')), ...settings)
    );
  } catch {
    return false;
  }
}
