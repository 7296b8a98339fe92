/** Process exit codes of the `tributary` command (documented in README.md). */
export const ExitCode = {
  /** Success; for verify: source and target are equal. */
  ok: 0,
  /** The config or the servers are not right (validate), or verify found differences. */
  invalid: 1,
  /** A pipeline stopped on an error that needs an operator; verify could not compare. */
  failed: 2,
  /** An internal error (a bug: please report it). */
  internal: 3,
  /** Wrong command-line usage. */
  usage: 64,
} as const;
