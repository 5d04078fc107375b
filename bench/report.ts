// What a scenario hands back, and how the bench prints it: a flat list of labelled figures (each
// compared with its goal and the original Go server's figure) plus free-form details for the JSON.
import type { Machine } from './proc.ts';
import { machineLabel } from './proc.ts';

export interface Figure {
  /** Stable key, e.g. `stub.w1.cpuUsPerShake.20000`. */
  id: string;
  label: string;
  value: number;
  unit: string;
  /** Target: the figure must be <= this. */
  goal?: number;
  /** Target for figures where more is better (rates): the figure must be >= this. */
  atLeast?: number;
  /** What the original Go program (server, or client for agent figures) measured on this machine. */
  goRef?: number;
  /** Extra words shown in the table. */
  note?: string;
  /** For figures without a numeric goal (e.g. exact seconds): whether it passed. */
  pass?: boolean;
  /** Why the figure cannot be fully trusted (busy machine, load generator behind); unset when fine. */
  caveat?: string;
}

export interface ScenarioResult {
  name: string;
  figures: Figure[];
  details: unknown;
}

export interface Scenario {
  name: string;
  /** Rough wall time, to skip a scenario that would not fit in the time budget. */
  estimateMs: number;
  run(log: (line: string) => void): Promise<ScenarioResult>;
}

/** ok / MISS against the goal; a trailing `?` when the figure carries a caveat. */
export function verdict(f: Figure): string {
  let v = '';
  if (!Number.isFinite(f.value)) v = 'n/a';
  else if (f.goal !== undefined) v = f.value <= f.goal ? 'ok' : 'MISS';
  else if (f.atLeast !== undefined) v = f.value >= f.atLeast ? 'ok' : 'MISS';
  else if (f.pass !== undefined) v = f.pass ? 'ok' : 'MISS';
  return f.caveat ? `${v}?` : v;
}

function fmt(v: number | undefined, unit = ''): string {
  if (v === undefined) return '';
  if (!Number.isFinite(v)) return 'n/a';
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toFixed(digits)}${unit ? ' ' + unit : ''}`;
}

/** The readable table (for stderr). */
export function table(m: Machine, results: ScenarioResult[]): string {
  const rows: string[][] = [['figure', 'measured', 'goal', 'Go', 'verdict', 'note']];
  for (const r of results) {
    for (const f of r.figures) {
      rows.push([
        f.label,
        fmt(f.value, f.unit),
        f.goal !== undefined ? `<= ${fmt(f.goal, f.unit)}` : f.atLeast !== undefined ? `>= ${fmt(f.atLeast, f.unit)}` : f.pass === undefined ? '' : 'exact',
        fmt(f.goRef, f.goRef === undefined ? '' : f.unit),
        verdict(f),
        f.note ?? '',
      ]);
    }
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const line = (row: string[]) => row.map((cell, c) => (c === 1 ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd();
  const out = [`machine: ${machineLabel(m)}`, line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of rows.slice(1)) out.push(line(row));
  // One line per distinct caveat of a scenario, naming the figures it applies to.
  const caveats: string[] = [];
  for (const r of results) {
    const by = new Map<string, string[]>();
    for (const f of r.figures) if (f.caveat) by.set(f.caveat, [...(by.get(f.caveat) ?? []), f.label]);
    for (const [why, labels] of by) caveats.push(`  ? ${labels.length === 1 ? labels[0] : `${r.name} (${labels.length} figures: ${labels.join('; ')})`}: ${why}`);
  }
  if (caveats.length) out.push('', 'caveats (figures marked ?):', ...caveats);
  return out.join('\n');
}
