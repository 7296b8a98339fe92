/**
 * Bounds the work handed to a target and not yet durable, by batch count and by bytes. `acquire` waits for room;
 * a single batch larger than the byte bound is still let through alone, so progress is always possible.
 *
 * Batches of initial-snapshot row blocks are bounded by bytes alone (`counted: false`): a SQL target loads the blocks
 * queued to it in one COPY, and with a count of 4 a snapshot reached it as one COPY per one or two batches, its
 * server idle between them. The byte bound (each block batch counts the size its rows take as events) still holds
 * the memory, as it does for streamed events.
 */
export class InFlightWindow {
  private count = 0;
  private uncounted = 0;
  private bytes = 0;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number,
  ) {}

  /** Waits for room and takes it; returns false (taking nothing) if the signal aborts first. */
  async acquire(bytes: number, signal?: AbortSignal, counted = true): Promise<boolean> {
    while (!this.fits(bytes, counted)) {
      if (signal?.aborted) return false;
      await new Promise<void>((resolve) => {
        const wake = () => {
          signal?.removeEventListener('abort', wake);
          resolve();
        };
        this.waiters.push(wake);
        signal?.addEventListener('abort', wake, { once: true });
      });
    }
    if (signal?.aborted) return false;
    if (counted) this.count += 1;
    else this.uncounted += 1;
    this.bytes += bytes;
    return true;
  }

  release(bytes: number, counted = true): void {
    if (counted) this.count -= 1;
    else this.uncounted -= 1;
    this.bytes -= bytes;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves once nothing is in flight. */
  async drained(): Promise<void> {
    while (this.count + this.uncounted > 0) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  get size(): { count: number; bytes: number } {
    return { count: this.count + this.uncounted, bytes: this.bytes };
  }

  private fits(bytes: number, counted: boolean): boolean {
    if (this.count + this.uncounted === 0) return true;
    return (!counted || this.count < this.maxCount) && this.bytes + bytes <= this.maxBytes;
  }
}
