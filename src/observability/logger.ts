import pino, { type Logger } from 'pino';
import { TributaryError } from '../errors.ts';
import { formatForTerminal } from './terminal-log.ts';

export type { Logger };

/** Replaces the password in any `scheme://user:password@host` URL inside a string. */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)[^@/\s]*@/gi, '$1***@');
}

const SECRET_KEYS = ['password', 'sasl.password', '*.password', '*.*.password', 'url', '*.url', '*.*.url'];

/** Where terminal log lines go instead of straight to the terminal (progress bars print them above themselves). */
let terminalRoute: ((text: string) => void) | null = null;

export function routeTerminalLines(route: ((text: string) => void) | null): void {
  terminalRoute = route;
}

/**
 * JSON lines with a stable `event` name per message; one short line per event on a TTY. Secrets are redacted:
 * password keys entirely, URLs keep everything but the password. An error that needs an operator or will be retried
 * is logged with its message and hint, without a stack trace (TRIBUTARY_DEBUG=1 adds it).
 */
export function createLogger(options: { level?: string; pretty?: boolean; destination?: number } = {}): Logger {
  const format = process.env.TRIBUTARY_LOG_FORMAT;
  const pretty =
    options.pretty ?? (format === 'json' ? false : format === 'terminal' || (process.stderr.isTTY && !process.env.CI));
  const base: pino.LoggerOptions = {
    level: options.level ?? process.env.TRIBUTARY_LOG_LEVEL ?? 'info',
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: SECRET_KEYS,
      censor: (value: unknown, path: string[]) =>
        path[path.length - 1] === 'url' && typeof value === 'string' ? redactUrl(value) : '***',
    },
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: serializeError },
    hooks: {
      // Error messages from drivers can echo connection strings.
      logMethod(args, method) {
        const redacted = args.map((a) => (typeof a === 'string' ? redactUrl(a) : a)) as typeof args;
        method.apply(this, redacted);
      },
    },
  };
  const fd = options.destination ?? 2;
  if (pretty) {
    const terminal = {
      colour: !process.env.NO_COLOR,
      debug: Boolean(process.env.TRIBUTARY_DEBUG),
      shownHints: new Map<string, string>(),
    };
    const out = pino.destination({ dest: fd, sync: true });
    return pino(base, {
      write: (line: string) => {
        const text = formatForTerminal(line, terminal);
        if (!text) return;
        if (terminalRoute) terminalRoute(text);
        else out.write(text);
      },
    });
  }
  return pino(base, pino.destination({ dest: fd, sync: false }));
}

function serializeError(err: unknown): unknown {
  if (err instanceof TributaryError && err.kind !== 'fatal' && !process.env.TRIBUTARY_DEBUG) {
    return { type: err.name, kind: err.kind, message: err.message, hint: err.hint };
  }
  return pino.stdSerializers.err(err as Error);
}
