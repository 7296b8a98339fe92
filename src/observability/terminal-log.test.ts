import { describe, expect, it } from 'vitest';
import { formatForTerminal } from './terminal-log.ts';

const plain = { colour: false, debug: false };

describe('terminal log lines', () => {
  it('a routine event is one short line, named by its event when it has no message', () => {
    const line = formatForTerminal(
      JSON.stringify({
        level: 'info',
        time: '2026-01-02T03:04:05.678Z',
        pipeline: 'orders',
        event: 'snapshot_done',
        rows: 1000,
        ms: 7,
        from: null,
      }),
      plain,
    );
    expect(line).toBe('03:04:05.678 INFO  [orders] snapshot done rows=1000 ms=7\n');
  });

  it('an operator error shows its message and hint, not its stack; TRIBUTARY_DEBUG shows the stack', () => {
    const entry = JSON.stringify({
      level: 'error',
      time: '2026-01-02T03:04:05.678Z',
      pipeline: 'orders',
      event: 'pipeline_failed',
      kind: 'operator',
      err: {
        type: 'SourceSetupError',
        message: 'table public.x does not exist',
        hint: 'Create it.',
        stack: 'Error\n    at f (x.ts:1:1)',
      },
      msg: 'table public.x does not exist\nCreate it.',
    });
    expect(formatForTerminal(entry, plain)).toBe(
      '03:04:05.678 ERROR [orders] table public.x does not exist kind=operator\n    Create it.\n',
    );
    expect(formatForTerminal(entry, { colour: false, debug: true })).toContain('    at f (x.ts:1:1)');
  });

  it('leaves long values out of the line', () => {
    const line = formatForTerminal(
      JSON.stringify({ level: 'info', time: '2026-01-02T03:04:05.678Z', msg: 'x', big: 'y'.repeat(200) }),
      plain,
    );
    expect(line).toBe('03:04:05.678 INFO  x\n');
  });
});

describe('retries at a terminal', () => {
  it('one line per retry; the advice only on the first', () => {
    const shownHints = new Map<string, string>();
    const retry = (ms: number) =>
      formatForTerminal(
        JSON.stringify({
          level: 'warn',
          time: '2026-01-02T03:04:05.678Z',
          pipeline: 'p',
          event: 'pipeline_retrying',
          delay_ms: ms,
          msg: `cannot connect to the target\nCheck that it runs. (retrying in ${ms} ms)`,
        }),
        { colour: false, debug: false, shownHints },
      );
    expect(retry(300)).toBe(
      '03:04:05.678 WARN  [p] cannot connect to the target\n    Check that it runs. (next try at 03:04:05, in 0.3 s)\n',
    );
    expect(retry(2700)).toBe('03:04:05.678 WARN  [p] cannot connect to the target (next try at 03:04:08, in 2.7 s)\n');
  });
});
