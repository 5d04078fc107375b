// Every process the bench starts is registered here by PID, and only those are ever signalled:
// SIGTERM first, SIGKILL for whatever is still alive after a grace period. Used on normal ends,
// errors, the watchdog and Ctrl-C alike.
import { sleep } from '../common/wait.ts';

interface Tracked {
  pid: number;
  name: string;
  /** Resolves when the process has exited (only known for direct children). */
  exited?: Promise<unknown>;
}

const tracked = new Map<number, Tracked>();

export function track(pid: number, name: string, exited?: Promise<unknown>): void {
  if (pid > 0) tracked.set(pid, { pid, name, exited });
}

export function untrack(pid: number): void {
  tracked.delete(pid);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}


/** Stops the given tracked processes: SIGTERM, then SIGKILL after `graceMs`. */
export async function stop(pids: readonly number[], graceMs = 3000): Promise<void> {
  const live = pids.filter((pid) => tracked.has(pid) && isAlive(pid));
  for (const pid of live) signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && live.some(isAlive)) await sleep(50);
  for (const pid of live) if (isAlive(pid)) signal(pid, 'SIGKILL');
  for (const pid of pids) untrack(pid);
}

/** Stops everything still tracked (idempotent). */
export async function stopAll(graceMs = 3000): Promise<void> {
  await stop([...tracked.keys()], graceMs);
}

/** Last resort on process exit: SIGKILL, synchronously, whatever is still tracked. */
export function killAllNow(): void {
  for (const pid of tracked.keys()) if (isAlive(pid)) signal(pid, 'SIGKILL');
  tracked.clear();
}
