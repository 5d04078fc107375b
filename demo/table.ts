// The summary table printed at the end of a demo: one row per phase of constant target QPS (the
// cells come from common/summary-format.ts, as report.html's do).
import { phaseTable, type PhaseLike } from '../common/summary-format.ts';

export type { PhaseLike };

export function formatTable(phases: PhaseLike[]): string {
  const cells = phaseTable(phases);
  const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n') + '\n';
}
