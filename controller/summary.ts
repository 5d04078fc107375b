// summary.json of a run: the series cut into phases of constant target QPS, each with its totals,
// exactness (seconds whose sent count equals the target) and latency from the merged histograms.
import { Histogram } from '../common/histogram.ts';
import type { Phase, Summary } from '../common/summary-format.ts';
import type { Row } from './timeline.ts';

export type { Phase, Summary };

/** Keeps the last line of each second (amended lines replace earlier ones), in second order. */
export function latestRows(rows: Row[]): Row[] {
  const bySecond = new Map<number, Row>();
  for (const r of rows) bySecond.set(r.second, r);
  return [...bySecond.values()].sort((a, b) => a.second - b.second);
}

function phaseOf(rows: Row[]): Omit<Phase, 'from' | 'to' | 'targetQps'> {
  const h = new Histogram();
  const p = { seconds: rows.length, sent: 0, answered: 0, won: 0, empty: 0, overload: 0, missed: 0, errors: 0, claims: 0, exactSeconds: 0, connections: 0, serverShakes: 0, lateP99Ms: 0 };
  for (const r of rows) {
    const c = r.client;
    p.sent += c.sent;
    p.answered += c.answered;
    p.won += c.won;
    p.empty += c.empty;
    p.overload += c.overload;
    p.missed += c.missed;
    p.errors += c.errors;
    p.claims += c.claims;
    if (r.targetQps !== null && c.sent === r.targetQps) p.exactSeconds++;
    p.connections = Math.max(p.connections, c.connections);
    p.lateP99Ms = Math.max(p.lateP99Ms, c.lateP99Ms ?? 0);
    p.serverShakes += r.server?.shakes ?? 0;
    if (r.hist) h.merge(Histogram.decode(r.hist));
  }
  const ms = (us: number) => Math.round(us) / 1000;
  return { ...p, p50Ms: ms(h.percentile(50)), p99Ms: ms(h.percentile(99)), maxMs: ms(h.max) };
}

export function summarize(runId: string, allRows: Row[]): Summary {
  const rows = latestRows(allRows);
  const phases: Phase[] = [];
  let start = 0;
  // No target yet (before agents report) and a target of 0 are one idle phase.
  const key = (r: Row) => r.targetQps ?? 0;
  for (let i = 1; i <= rows.length; i++) {
    if (i === rows.length || key(rows[i]) !== key(rows[start])) {
      const part = rows.slice(start, i);
      const targetQps = part.some((r) => r.targetQps !== null) ? key(part[0]) : null;
      phases.push({ from: part[0].second, to: part[part.length - 1].second, targetQps, ...phaseOf(part) });
      start = i;
    }
  }
  return { runId, from: rows[0]?.second ?? null, to: rows.at(-1)?.second ?? null, seconds: rows.length, phases, totals: phaseOf(rows) };
}
