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
