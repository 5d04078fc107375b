// What the connections cost in memory, read by the demo once everyone is logged in: the
// proportional set size (PSS: private pages plus a fair share of the shared ones, so the Node
// binary mapped by 100 processes is counted once) of the stub's processes and of the agents'
// processes, per logged-in connection, and what the machine has left. Linux /proc only; elsewhere
// the report is null and the demo says so.
import { readFileSync } from 'node:fs';

/** PSS of one process in KiB, or null when /proc does not tell (gone, not Linux). */
export function pssKiB(pid: number): number | null {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** MemAvailable of the machine in KiB, or null. */
export function availableKiB(): number | null {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export interface SideMemory {
  processes: number;
  /** Sum of the processes' PSS, MiB. */
  pssMiB: number;
  connections: number;
  /** pssMiB per connection, KiB (baselines of the processes included). */
  kibPerConnection: number;
}

/** Sums the PSS of `pids` against `connections`; null when any process cannot be read. */
export function sideMemory(pids: number[], connections: number): SideMemory | null {
  let kib = 0;
  for (const pid of pids) {
    const p = pssKiB(pid);
    if (p === null) return null;
    kib += p;
  }
  return {
    processes: pids.length,
    pssMiB: Math.round(kib / 1024),
    connections,
    kibPerConnection: connections > 0 ? Math.round((kib / connections) * 100) / 100 : 0,
  };
}

export function formatSide(name: string, m: SideMemory): string {
  return `${name} ${m.processes} processes ${(m.pssMiB / 1024).toFixed(2)} GiB (${m.kibPerConnection.toFixed(2)} KiB per connection)`;
}
