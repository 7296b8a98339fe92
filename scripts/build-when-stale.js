// npm's `prepare`: builds dist/ unless it is already as new as the sources. npm runs `prepare` after every install,
// and `npx tributary` runs it again the first time it meets a checkout (it installs the checkout into its own cache
// as a file: dependency), which rebuilt an unchanged checkout right after `npm install` had built it.
import { execFileSync } from 'node:child_process';
import { compiledIsFresh, root } from '../bin/compiled-build.js';

if (!compiledIsFresh()) {
  execFileSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
}
