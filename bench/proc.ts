// Per-process figures read from /proc: CPU time (utime + stime, all threads of the process) and
// resident memory. Also the machine description every figure is labelled with.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';

let ticksPerSecond = 0;

/** `getconf CLK_TCK` (the unit of utime/stime in /proc/PID/stat), 100 when it cannot be read. */
export function clockTicks(): number {
  if (ticksPerSecond > 0) return ticksPerSecond;
  try {
    ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  } catch {
    ticksPerSecond = 0;
  }
  if (!(ticksPerSecond > 0)) ticksPerSecond = 100;
  return ticksPerSecond;
}

/** utime and stime of a process in clock ticks, or [-1, -1] when it is gone. */
export function cpuTicks(pid: number): [number, number] {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return [-1, -1];
  }
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  // rest[0] is field 3 (state), so field n is rest[n - 3]: utime = 14, stime = 15.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return [Number(rest[11]), Number(rest[12])];
}

/** VmRSS of a process in KiB, or -1 when it is gone. */
export function rssKb(pid: number): number {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return -1;
  }
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  return m ? Number(m[1]) : -1;
}

/** Open file descriptors of a process (sockets included), or -1 when it is gone. */
export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/** Busy and total clock ticks of the whole machine (all cores) from /proc/stat. */
export function systemTicks(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number); // user nice system idle iowait irq softirq steal
    const total = v.reduce((a, b) => a + b, 0);
    return { busy: total - v[3] - v[4], total };
  } catch {
    return { busy: NaN, total: NaN };
  }
}

/** CPU ticks (user + system, and system alone) of several processes and of the machine at one instant. */
export interface CpuSample {
  atMs: number;
  ticks: number[];
  sysTicks: number[];
  system: { busy: number; total: number };
}

export function sampleCpu(pids: readonly number[]): CpuSample {
  const split = pids.map(cpuTicks);
  return {
    atMs: performance.now(),
    ticks: split.map(([u, s]) => (u < 0 ? -1 : u + s)),
    sysTicks: split.map(([, s]) => s),
    system: systemTicks(),
  };
}

/** Cores' worth of CPU the whole machine was busy between two samples. */
export function systemBusyCores(a: CpuSample, b: CpuSample): number {
  return ((b.system.busy - a.system.busy) / clockTicks() / (b.atMs - a.atMs)) * 1000;
}

/** CPU microseconds spent by each process between two samples (NaN for a process that vanished). */
export function cpuUsBetween(a: CpuSample, b: CpuSample): number[] {
  const us = 1e6 / clockTicks();
  return a.ticks.map((t, i) => (t < 0 || b.ticks[i] < 0 ? NaN : (b.ticks[i] - t) * us));
}

/** Of which in the kernel (stime), per process. */
export function sysUsBetween(a: CpuSample, b: CpuSample): number[] {
  const us = 1e6 / clockTicks();
  return a.sysTicks.map((t, i) => (t < 0 || b.sysTicks[i] < 0 ? NaN : (b.sysTicks[i] - t) * us));
}

/** Summed VmRSS of several processes in KiB (NaN when one of them is gone). */
export function totalRssKb(pids: readonly number[]): number {
  let sum = 0;
  for (const pid of pids) {
    const kb = rssKb(pid);
    if (kb < 0) return NaN;
    sum += kb;
  }
  return sum;
}

export interface Machine {
  cores: number;
  model: string;
  memGiB: number;
  node: string;
  os: string;
  clkTck: number;
  loadavg: number[];
}

export function machine(): Machine {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    model: (cpus[0]?.model ?? 'unknown').replace(/\s+/g, ' ').trim(),
    memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    clkTck: clockTicks(),
    loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/** One-line label of the machine, printed with every table. */
export function machineLabel(m: Machine): string {
  return `${m.cores} cores ${m.model}, ${m.memGiB} GiB, node ${m.node}, ${m.os}, load ${m.loadavg.join(' ')}`;
}
