#!/usr/bin/env node
// Entry point. Runs the compiled JavaScript in dist/ (built by `npm install` / `npm run build`) when it is at least
// as new as every source file; otherwise loads the TypeScript sources through tsx, so an edit never runs stale code.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
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

function compiledIsFresh() {
  try {
    const built = fs.statSync(stamp).mtimeMs;
    return built >= Math.max(newestSource(path.join(root, 'src')), newestSource(path.join(root, 'connectors')));
  } catch {
    return false;
  }
}

if (compiledIsFresh()) {
  await import(pathToFileURL(path.join(root, 'dist', 'src', 'cli.js')).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(path.join(root, 'src', 'cli.ts')).href);
}
