// Process limits read from /proc (Linux). Node has no getrlimit.
import { readFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** Soft and hard limit of open files of this process; 1024/1024 when unknown. */
export function openFileLimit(): { soft: number; hard: number } {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const m = line && /Max open files\s+(\S+)\s+(\S+)/.exec(line);
    if (m) {
      return { soft: m[1] === 'unlimited' ? 1 << 30 : Number(m[1]), hard: m[2] === 'unlimited' ? 1 << 30 : Number(m[2]) };
    }
  } catch {
    // not Linux
  }
  return { soft: 1024, hard: 1024 };
}

/** Files a process keeps for itself (stdio, IPC, listeners, libraries) beyond its sockets. */
export const RESERVED_FDS = 64;

/**
 * Ports at the bottom of ip_local_port_range [low, high] that the agent never binds explicitly. A
 * port bound with bind() on any address can no longer be picked by the kernel for another
 * program's connect() (Linux skips such ports when it chooses one): were all of them bound, every
 * other outgoing connection of the host (the agent's own HTTP to the controller included) would
 * fail with EADDRNOTAVAIL. A 16th of the range, at most 1024.
 */
export function autobindReserve(range: { portLow: number; portHigh: number }): number {
  return Math.min(1024, Math.floor((range.portHigh - range.portLow + 1) / 16));
}

/** How much nicer than its primary a worker process runs (see yieldToPrimary). */
export const WORKER_NICE = 5;

/**
 * Lowers the scheduling priority of a worker this process just forked, so that when the machine is
 * overloaded the primary (control endpoint, per-second stats, NTP, the stub's /stats) still gets the
 * CPU it needs, a few ms a second, and reports the overload instead of going silent. Workers keep
 * all the CPU nobody else wants. Best effort: a platform that refuses leaves the worker as it is.
 */
export function yieldToPrimary(pid: number | undefined): void {
  if (!pid) return;
  try {
    setPriority(pid, Math.min(19, getPriority(0) + WORKER_NICE));
  } catch {
    // not permitted here: the worker keeps its priority
  }
}
