import { describe, expect, it } from 'vitest';
import { InFlightWindow } from './in-flight-window.ts';

/** Whether `acquire` resolved by the time queued callbacks ran. */
async function settled(p: Promise<boolean>): Promise<boolean> {
  let done = false;
  void p.then(() => {
    done = true;
  });
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('InFlightWindow', () => {
  it('bounds counted batches by count and by bytes', async () => {
    const window = new InFlightWindow(2, 100);
    expect(await window.acquire(10)).toBe(true);
    expect(await window.acquire(10)).toBe(true);
    const third = window.acquire(10);
    expect(await settled(third)).toBe(false);
    window.release(10);
    expect(await third).toBe(true);
    window.release(10);
    const big = window.acquire(95);
    expect(await settled(big)).toBe(false);
    window.release(10);
    expect(await big).toBe(true);
    expect(window.size).toEqual({ count: 1, bytes: 95 });
  });

  it('lets uncounted batches (snapshot blocks) past the count, never past the bytes', async () => {
    const window = new InFlightWindow(2, 100);
    for (let i = 0; i < 9; i++) expect(await window.acquire(10, undefined, false)).toBe(true);
    expect(window.size).toEqual({ count: 9, bytes: 90 });
    // Counted batches still have their count to themselves, but the bytes are shared.
    expect(await window.acquire(10)).toBe(true);
    const over = window.acquire(10, undefined, false);
    expect(await settled(over)).toBe(false);
    window.release(10, false);
    expect(await over).toBe(true);
    for (let i = 0; i < 9; i++) window.release(10, false);
    window.release(10);
    await window.drained();
    expect(window.size).toEqual({ count: 0, bytes: 0 });
  });

  it('lets one batch larger than the byte bound through alone, and drained waits for uncounted ones too', async () => {
    const window = new InFlightWindow(4, 100);
    expect(await window.acquire(500, undefined, false)).toBe(true);
    const next = window.acquire(1);
    expect(await settled(next)).toBe(false);
    let drained = false;
    void window.drained().then(() => {
      drained = true;
    });
    window.release(500, false);
    expect(await next).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(drained).toBe(false);
    window.release(1);
    await new Promise((r) => setImmediate(r));
    expect(drained).toBe(true);
  });
});
