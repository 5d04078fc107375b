// Per-second records of the agent. Workers count into `SecondRecs` (integer counters and a latency
// histogram per scheduled second) and hand over deltas each second; the parent merges them into an
// `AgentStats` ring that answers GET /stats, /metrics and the controller's samples.
import { AGENT_SECOND_FIELDS } from '../common/fields.ts';
import { Histogram } from '../common/histogram.ts';

/** Counter fields, in the order workers send them. */
export const REC_FIELDS = AGENT_SECOND_FIELDS;
export type RecField = (typeof REC_FIELDS)[number];
export const R = Object.fromEntries(REC_FIELDS.map((f, i) => [f, i])) as { readonly [K in RecField]: number };
export const N_REC = REC_FIELDS.length;

export interface SecondRec {
  c: number[];
  /** Latency in microseconds from the scheduled instant to the reply. */
  h: Histogram;
  /** Lateness in microseconds: actual send - scheduled send. */
  l: Histogram;
}

export type SecondStatsOut = { second: number } & { [K in RecField]: number } & { p50Ms: number; p99Ms: number; maxMs: number; lateP99Ms: number };

/** What a worker hands over per second: second, counters, latency histogram, lateness histogram. */
export type SecondDelta = [number, number[], string, string];

/** A worker's records touched since the last flush, keyed by second. */
export class SecondRecs {
  private recs = new Map<number, SecondRec>();
  private lastSecond = -1;
  private last: SecondRec | undefined;

  rec(second: number): SecondRec {
    if (second === this.lastSecond && this.last) return this.last;
    let r = this.recs.get(second);
    if (!r) {
      r = { c: new Array<number>(N_REC).fill(0), h: new Histogram(), l: new Histogram() };
      this.recs.set(second, r);
    }
    this.lastSecond = second;
    this.last = r;
    return r;
  }

  add(second: number, field: number, n = 1): void {
    this.rec(second).c[field] += n;
  }

  /** Deltas since the last flush, and a fresh start. */
  flush(): SecondDelta[] {
    const out: SecondDelta[] = [];
    for (const [s, r] of this.recs) out.push([s, r.c, r.h.total ? r.h.encode() : '', r.l.total ? r.l.encode() : '']);
    this.recs = new Map();
    this.last = undefined;
    this.lastSecond = -1;
    return out;
  }
}

/** Merged per-second records of all workers, `history` seconds deep. */
export class AgentStats {
  private readonly recs = new Map<number, SecondRec>();
  readonly totals = new Array<number>(N_REC).fill(0);
  /** Every latency recorded since the start (us), for the Prometheus histogram of /metrics. */
  readonly latency = new Histogram();
  /** Seconds that changed since they were last taken by takeChanged(). */
  private readonly changed = new Set<number>();

  constructor(private readonly history = 600) {}

  /** Seconds <= upTo that changed since the last call, oldest first (for the controller push). */
  takeChanged(upTo: number): number[] {
    const out: number[] = [];
    for (const s of this.changed) if (s <= upTo) out.push(s);
    for (const s of out) this.changed.delete(s);
    return out.sort((a, b) => a - b);
  }

  merge(second: number, counters: readonly number[], hist: string, late = ''): void {
    this.changed.add(second);
    if (this.changed.size > this.history) this.changed.delete(this.changed.values().next().value as number);
    let r = this.recs.get(second);
    if (!r) {
      r = { c: new Array<number>(N_REC).fill(0), h: new Histogram(), l: new Histogram() };
      this.recs.set(second, r);
      // Evict the oldest beyond the history (Map keeps insertion order; seconds arrive roughly in order).
      if (this.recs.size > this.history) {
        for (const s of this.recs.keys()) {
          if (this.recs.size <= this.history) break;
          this.recs.delete(s);
        }
      }
    }
    for (let i = 0; i < N_REC; i++) {
      r.c[i] += counters[i] ?? 0;
      this.totals[i] += counters[i] ?? 0;
    }
    if (hist) {
      const h = Histogram.decode(hist);
      r.h.merge(h);
      this.latency.merge(h);
    }
    if (late) r.l.merge(Histogram.decode(late));
  }

  get(second: number): SecondRec | undefined {
    return this.recs.get(second);
  }

  /** One entry per second in [from, to] (zeros where nothing happened), oldest first. */
  range(from: number, to: number): SecondStatsOut[] {
    const out: SecondStatsOut[] = [];
    for (let s = Math.max(from, to - this.history + 1); s <= to; s++) out.push(entry(s, this.recs.get(s)));
    return out;
  }
}

const us2ms = (us: number) => Math.round(us) / 1000;

export function entry(second: number, r: SecondRec | undefined): SecondStatsOut {
  const e: Record<string, number> = { second };
  REC_FIELDS.forEach((f, i) => (e[f] = r ? r.c[i] : 0));
  e.p50Ms = r ? us2ms(r.h.percentile(50)) : 0;
  e.p99Ms = r ? us2ms(r.h.percentile(99)) : 0;
  e.maxMs = r ? us2ms(r.h.max) : 0;
  e.lateP99Ms = r ? us2ms(r.l.percentile(99)) : 0;
  return e as SecondStatsOut;
}
