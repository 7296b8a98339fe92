import fs from 'node:fs';
import net from 'node:net';

/**
 * A free TCP port on loopback for a test server, chosen below the kernel's ephemeral range. Port 0 would
 * hand out an ephemeral port, which any client connection of a concurrent test can take as its local port
 * before the server binds it (or between a server's stop and its restart on the same port): seen as
 * "Address already in use" in CI. Ports below the ephemeral range are only ever taken by a listener.
 */
export async function freePort(): Promise<number> {
  const [low, high] = listenerRange();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (handedOut.has(port)) continue;
    if (await bindable(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found between ${low} and ${high}`);
}

/** Ports this process gave out already: two servers of one test file never get the same one. */
const handedOut = new Set<number>();

function listenerRange(): [number, number] {
  let ephemeralLow = 32768;
  try {
    ephemeralLow = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {}
  // Stay clear of well-known service ports (below 10000) and of the ephemeral range.
  const high = Math.max(ephemeralLow - 1, 11000);
  return [Math.min(10000, high - 1000), high];
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
