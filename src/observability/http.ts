import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { TributaryError } from '../errors.ts';
import type { PipelineState } from '../pipeline/pipeline.ts';
import type { PipelineMetrics } from './metrics.ts';
import { reportOf } from './status-report.ts';

/**
 * /metrics (Prometheus), /healthz (200 while no pipeline failed), /status (JSON). With a bearer token, /metrics
 * and /status need it (they reveal table names, positions and errors); /healthz stays open for liveness probes.
 */
export function startHttpServer(
  listen: string,
  metrics: PipelineMetrics,
  states: () => PipelineState[],
  options: { bearerToken?: string } = {},
): Promise<http.Server> {
  const [host, port] = splitHostPort(listen);
  const server = http.createServer((req, res) => {
    const url = req.url?.split('?')[0];
    if ((url === '/metrics' || url === '/status') && !authorized(req, options.bearerToken)) {
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer realm="tributary"' });
      res.end('unauthorized: send the header "Authorization: Bearer <http.bearer_token>"\n');
      return;
    }
    if (url === '/metrics') {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        },
        (err) => {
          res.writeHead(500);
          res.end(String(err));
        },
      );
      return;
    }
    if (url === '/healthz') {
      const failed = states().filter((s) => s.status === 'failed');
      res.writeHead(failed.length ? 503 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: failed.length === 0, failed: failed.map((s) => s.name) }));
      return;
    }
    if (url === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ pipelines: states().map(reportOf) }, null, 2));
      return;
    }
    res.writeHead(404);
    res.end('not found: try /metrics, /healthz or /status\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(listen, err)));
    server.listen(port, host, () => resolve(server));
  });
}

function authorized(req: http.IncomingMessage, token: string | undefined): boolean {
  if (token === undefined) return true;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!match) return false;
  // Compared in constant time, so the answer's timing does not reveal how much of a guess was right.
  const given = createHash('sha256').update(match[1]!).digest();
  const expected = createHash('sha256').update(token).digest();
  return timingSafeEqual(given, expected);
}

/** Why the endpoint cannot listen, in the operator's terms. */
function listenError(listen: string, err: NodeJS.ErrnoException): Error {
  const reasons: Record<string, [string, string]> = {
    EADDRINUSE: ['is already in use', 'Stop the process that listens there, or choose another port in http.listen.'],
    EACCES: ['needs privileges this process lacks', 'Choose a port above 1023 in http.listen, or grant the privilege.'],
    EADDRNOTAVAIL: [
      'is not an address of this machine',
      'Use 127.0.0.1, 0.0.0.0 or an address of this machine in http.listen.',
    ],
    ENOTFOUND: ['names a host that does not resolve', 'Fix the host part of http.listen.'],
  };
  const reason = err.code ? reasons[err.code] : undefined;
  if (!reason) return err;
  return new TributaryError('operator', `the HTTP endpoint cannot listen on ${listen}: the address ${reason[0]}`, {
    hint: reason[1],
    cause: err,
  });
}

export function splitHostPort(listen: string): [string, number] {
  const i = listen.lastIndexOf(':');
  return [listen.slice(0, i), Number(listen.slice(i + 1))];
}
