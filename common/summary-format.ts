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
