// Wall-clock helpers: epoch seconds and sleeping until an instant.

import { sleep } from '../common/wait.ts';

export { sleep };

/** Current epoch second. */
export function nowSecond(): number {
  return Math.floor(Date.now() / 1000);
}

/** Resolves at (or just after) the epoch millisecond `atMs`. */
export function sleepUntil(atMs: number): Promise<void> {
  return sleep(atMs - Date.now());
}
