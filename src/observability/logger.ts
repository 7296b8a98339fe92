import pino, { type Logger } from 'pino';

export type { Logger };

/** Replaces the password in any `scheme://user:password@host` URL inside a string. */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)[^@/\s]*@/gi, '$1***@');
}

const SECRET_KEYS = ['password', 'sasl.password', '*.password', '*.*.password', 'url', '*.url', '*.*.url'];

/**
 * JSON lines with a stable `event` name per message; pretty on a TTY. Secrets are redacted: password keys entirely,
 * URLs keep everything but the password.
 */
export function createLogger(options: { level?: string; pretty?: boolean; destination?: number } = {}): Logger {
  const pretty = options.pretty ?? (process.stderr.isTTY && !process.env.CI);
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
    return pino(
      base,
      pino.transport({ target: 'pino-pretty', options: { destination: fd, translateTime: 'SYS:HH:MM:ss.l' } }),
    );
  }
  return pino(base, pino.destination({ dest: fd, sync: false }));
}
