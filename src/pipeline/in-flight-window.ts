/**
 * Bounds the work handed to a target and not yet durable, by batch count and by bytes. `acquire` waits for room;
 * a single batch larger than the byte bound is still let through alone, so progress is always possible.
 */
export class InFlightWindow {
  private count = 0;
  private bytes = 0;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number,
  ) {}

  /** Waits for room and takes it; returns false (taking nothing) if the signal aborts first. */
  async acquire(bytes: number, signal?: AbortSignal): Promise<boolean> {
    while (!this.fits(bytes)) {
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
    this.count += 1;
    this.bytes += bytes;
    return true;
  }

  release(bytes: number): void {
    this.count -= 1;
    this.bytes -= bytes;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves once nothing is in flight. */
  async drained(): Promise<void> {
    while (this.count > 0) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  get size(): { count: number; bytes: number } {
    return { count: this.count, bytes: this.bytes };
  }

  private fits(bytes: number): boolean {
    if (this.count === 0) return true;
    return this.count < this.maxCount && this.bytes + bytes <= this.maxBytes;
  }
}
