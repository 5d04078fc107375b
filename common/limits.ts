// Process limits read from /proc (Linux). Node has no getrlimit.
import { readFileSync } from 'node:fs';

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
