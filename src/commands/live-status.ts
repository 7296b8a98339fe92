import type { PipelineStatusReport } from '../observability/status-report.ts';

/** The running daemon's view of its pipelines, from its /status endpoint; undefined when nothing answers there. */
export async function liveStates(listen: string, bearerToken?: string): Promise<PipelineStatusReport[] | undefined> {
  try {
    const res = await fetch(`http://${listen}/status`, {
      signal: AbortSignal.timeout(1000),
      ...(bearerToken ? { headers: { authorization: `Bearer ${bearerToken}` } } : {}),
    });
    return ((await res.json()) as { pipelines: PipelineStatusReport[] }).pipelines;
  } catch {
    return undefined;
  }
}
