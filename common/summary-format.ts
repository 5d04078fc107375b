// The shape of a run's summary.json (written by the controller, read by the demo and by people).

export interface Phase {
  from: number;
  to: number;
  seconds: number;
  targetQps: number | null;
  sent: number;
  answered: number;
  won: number;
  empty: number;
  overload: number;
  missed: number;
  errors: number;
  claims: number;
  /** Seconds in which the fleet sent exactly the target. */
  exactSeconds: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The largest per-second p99 of send lateness (actual - scheduled send) of any agent. */
  lateP99Ms: number;
  connections: number;
  serverShakes: number;
}

export interface Summary {
  runId: string;
  from: number | null;
  to: number | null;
  seconds: number;
  phases: Phase[];
  totals: Omit<Phase, 'from' | 'to' | 'targetQps'>;
}

/** The fields of a phase its table shows. */
export type PhaseLike = Pick<Phase, 'seconds' | 'targetQps' | 'sent' | 'answered' | 'won' | 'missed' | 'exactSeconds' | 'p50Ms' | 'p99Ms' | 'lateP99Ms' | 'connections' | 'serverShakes'>;

const PHASE_COLUMNS: Array<[string, (p: PhaseLike, i: number) => string]> = [
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

/**
 * The phase table as cells, header first: one row per phase of constant target QPS. The demo's
 * summary.txt and report.html both print these cells, so they show the same numbers.
 */
export function phaseTable(phases: readonly PhaseLike[]): string[][] {
  return [PHASE_COLUMNS.map(([h]) => h), ...phases.map((p, i) => PHASE_COLUMNS.map(([, f]) => f(p, i)))];
}
