/**
 * Started through npm (`npx tributary run`, `npm run ...`), the process's parent is npm's shell, and a SIGTERM sent
 * to npm ends npm without reaching us: the daemon would run on, orphaned. When npm started us, its exit is our
 * signal to stop. (Started directly, by systemd, a container runtime or `nohup`, the parent may go away on purpose,
 * so nothing is watched.)
 */
export function stopWhenNpmParentExits(stop: () => void, intervalMs = 500): () => void {
  if (!process.env.npm_command && !process.env.npm_lifecycle_event) return () => {};
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (isAlive(parent) && process.ppid === parent) return;
    clearInterval(timer);
    stop();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
