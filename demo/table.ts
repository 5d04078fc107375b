// The summary table printed at the end of a demo: one row per phase of constant target QPS.
import type { Phase } from '../common/summary-format.ts';

export type PhaseLike = Pick<Phase, 'seconds' | 'targetQps' | 'sent' | 'answered' | 'won' | 'missed' | 'exactSeconds' | 'p50Ms' | 'p99Ms' | 'lateP99Ms' | 'connections' | 'serverShakes'>;

const COLUMNS: Array<[string, (p: PhaseLike, i: number) => string]> = [
  ['phase', (p, i) => (p.targetQps ? `${p.targetQps} QPS` : i === 0 ? 'connect' : 'idle')],
  ['seconds', (p) => String(p.seconds)],
  ['target', (p) => (p.targetQps === null ? '-' : String(p.targetQps * p.seconds))],
  ['sent', (p) => String(p.sent)],
  ['answered', (p) => String(p.answered)],
  ['won', (p) => String(p.won)],
  ['missed', (p) => String(p.missed)],
  ['exact s', (p) => (p.targetQps === null ? '-' : `${p.exactSeconds}/${p.seconds}`)],
  ['p50 ms', (p) => p.p50Ms.toFixed(2)],
  ['p99 ms', (p) => p.p99Ms.toFixed(2)],
  ['worst-second late p99 ms', (p) => (p.lateP99Ms ?? 0).toFixed(2)],
  ['connections', (p) => String(p.connections)],
  ['server shakes', (p) => String(p.serverShakes)],
];

export function formatTable(phases: PhaseLike[]): string {
  const cells = [COLUMNS.map(([h]) => h), ...phases.map((p, i) => COLUMNS.map(([, f]) => f(p, i)))];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n') + '\n';
}
