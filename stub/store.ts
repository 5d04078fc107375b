// Per-second counters merged from all workers and the primary, kept for `history` seconds.
import { FIELDS, N_FIELDS, type SecondStats } from './fields.ts';

export class SecondStore {
  private readonly seconds: Float64Array;
  private readonly values: Float64Array;
  /** Totals since start, for /metrics. */
  readonly totals = new Float64Array(N_FIELDS);

  constructor(
    private readonly history: number,
    /** First second the store answers for. */
    readonly startSecond: number,
  ) {
    this.seconds = new Float64Array(history).fill(-1);
    this.values = new Float64Array(history * N_FIELDS);
  }

  private newest = 0;

  private slot(second: number): number {
    if (second > this.newest) this.newest = second;
    const i = second % this.history;
    if (this.seconds[i] !== second) {
      this.seconds[i] = second;
      this.values.fill(0, i * N_FIELDS, (i + 1) * N_FIELDS);
    }
    return i * N_FIELDS;
  }

  /** False for seconds before the start or already pushed out of the history. */
  private keeps(second: number): boolean {
    return second >= this.startSecond && second > this.newest - this.history;
  }

  /** Adds a worker's or the primary's counters for one second. */
  add(second: number, counters: ArrayLike<number>): void {
    if (!this.keeps(second)) return;
    const base = this.slot(second);
    for (let f = 0; f < N_FIELDS; f++) {
      const v = counters[f];
      if (v) {
        this.values[base + f] += v;
        this.totals[f] += v;
      }
    }
  }

  addField(second: number, field: number, n: number): void {
    if (n === 0 || !this.keeps(second)) return;
    this.values[this.slot(second) + field] += n;
    this.totals[field] += n;
  }

  /** Entries for seconds in [from, to], oldest first; seconds with nothing recorded are zeros. */
  range(from: number, to: number): SecondStats[] {
    const out: SecondStats[] = [];
    const first = Math.max(from, this.startSecond, Math.max(to, this.newest) - this.history + 1);
    for (let s = first; s <= to; s++) {
      const i = s % this.history;
      const e: Record<string, number> = { second: s };
      const have = this.seconds[i] === s;
      for (let f = 0; f < N_FIELDS; f++) e[FIELDS[f]] = have ? this.values[i * N_FIELDS + f] : 0;
      out.push(e as SecondStats);
    }
    return out;
  }
}
