#!/usr/bin/env node
// Entry point. Runs the compiled JavaScript in dist/ (built by `npm install` / `npm run build`) when it is at least
// as new as every source file; otherwise loads the TypeScript sources through tsx, so an edit never runs stale code.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { compiledIsFresh, root } from './compiled-build.js';

if (compiledIsFresh()) {
  await import(pathToFileURL(path.join(root, 'dist', 'src', 'cli.js')).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(path.join(root, 'src', 'cli.ts')).href);
}
