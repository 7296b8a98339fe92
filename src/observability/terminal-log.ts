/**
 * Log lines for a person at a terminal: one line per event (time, level, pipeline, message, a few short fields),
 * the hint of an error on the next line, never a stack trace unless TRIBUTARY_DEBUG is set. Machines get the JSON
 * lines; this only formats them.
 */

const LEVELS: Record<string, { label: string; colour: string }> = {
  trace: { label: 'TRACE', colour: '\x1b[90m' },
  debug: { label: 'DEBUG', colour: '\x1b[90m' },
  info: { label: 'INFO ', colour: '\x1b[32m' },
  warn: { label: 'WARN ', colour: '\x1b[33m' },
  error: { label: 'ERROR', colour: '\x1b[31m' },
  fatal: { label: 'FATAL', colour: '\x1b[31m' },
};
const RESET = '\x1b[0m';
const DIM = '\x1b[2m';
/** Fields shown elsewhere on the line, or too routine to repeat. */
const SHOWN_ELSEWHERE = new Set(['level', 'time', 'msg', 'event', 'pipeline', 'err', 'delay_ms']);
const LONGEST_FIELD = 80;

export interface TerminalLogOptions {
  colour: boolean;
  debug: boolean;
  /**
   * The last hint shown per pipeline and event: a retry repeating the same advice shows it once, not on every line.
   */
  shownHints?: Map<string, string>;
}

/** Formats one JSON log line; returns the line unchanged when it is not JSON. */
export function formatForTerminal(jsonLine: string, options: TerminalLogOptions): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(jsonLine);
  } catch {
    return jsonLine;
  }
  const paint = (code: string, text: string) => (options.colour ? `${code}${text}${RESET}` : text);
  const level = LEVELS[String(entry.level)] ?? { label: String(entry.level).toUpperCase(), colour: '' };
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 23) : '';
  const event = typeof entry.event === 'string' ? entry.event : '';
  const err = entry.err as { message?: string; hint?: string; stack?: string; kind?: string } | undefined;
  let message = typeof entry.msg === 'string' && entry.msg ? entry.msg : '';
  if (typeof entry.delay_ms === 'number' && typeof entry.time === 'string') {
    // When the next try is, on the clock a person reads the log by.
    const at = new Date(Date.parse(entry.time) + entry.delay_ms).toISOString().slice(11, 19);
    message = message.replace(
      /\(retrying in \d+ ms\)/,
      `(next try at ${at}, in ${(entry.delay_ms / 1000).toFixed(1)} s)`,
    );
  }
  if (!message && err?.message) message = err.message;
  if (!message) message = event.replaceAll('_', ' ');
  // The first line carries the message; a hint (second line onwards) goes below, indented.
  const [first = '', ...rest] = message.split('\n');
  const fields = Object.entries(entry)
    .filter(([key, value]) => !SHOWN_ELSEWHERE.has(key) && value !== null && value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .filter((field) => field.length <= LONGEST_FIELD);
  const pipeline = typeof entry.pipeline === 'string' ? `${paint(DIM, `[${entry.pipeline}]`)} ` : '';
  const details = [...rest];
  if (err?.hint && !message.includes(err.hint)) details.push(...err.hint.split('\n'));
  const hintKey = `${String(entry.pipeline)}|${event}`;
  const detailText = details.join('\n').replace(/\(next try at .*\)$/, '');
  const repeated = options.shownHints?.get(hintKey) === detailText && details.length > 0;
  options.shownHints?.set(hintKey, detailText);
  const retryNote = repeated ? (/ \(next try at [^)]*\)$/.exec(details[details.length - 1] ?? '')?.[0] ?? '') : '';
  const lines = [
    `${paint(DIM, time)} ${paint(level.colour, level.label)} ${pipeline}${first}${retryNote}${fields.length ? ` ${paint(DIM, fields.join(' '))}` : ''}`,
    ...(repeated ? [] : details.map((line) => `    ${line}`)),
  ];
  if (err?.stack && options.debug) {
    lines.push(...err.stack.split('\n').map((line) => `    ${line}`));
  }
  return `${lines.join('\n')}\n`;
}
