// Emits `rate` items per epoch second, in ten ticks a second, up to `total`. Per-second counts are
// exact: the quota is spread over the first SPREAD_TICKS ticks (tick k has emitted
// floor(rate*(k+1)/SPREAD_TICKS) items of its second), and the last ticks only catch up, so a
// process stalled by up to ~300 ms still completes its second. Quota that could not be emitted
// within its own second is counted as missed, never emitted late.
import { cumulativeQuota } from '../common/split.ts';

export const TICKS_PER_SECOND = 10;
const SPREAD_TICKS = 7;

export class RatePacer {
  emitted = 0;
  missed = 0;
  private second = -1;
  private doneThisSecond = 0;

  constructor(
    readonly rate: number,
    readonly total: number,
    /** First epoch second that emits. */
    readonly startSecond: number,
  ) {}

  get finished(): boolean {
    return this.emitted + this.missed >= this.total;
  }

  /** How many items to emit now (epoch milliseconds), keeping every second's count exact. */
  due(nowMs: number): number {
    const s = Math.floor(nowMs / 1000);
    if (s < this.startSecond || this.finished || this.rate === 0) return 0;
    if (s !== this.second) {
      if (this.second >= 0) {
        const owed = Math.min(this.rate - this.doneThisSecond + (s - this.second - 1) * this.rate, this.remaining());
        this.missed += Math.max(0, owed);
      } else if (s > this.startSecond) {
        this.missed += Math.min((s - this.startSecond) * this.rate, this.remaining());
      }
      this.second = s;
      this.doneThisSecond = 0;
    }
    const k = Math.min(TICKS_PER_SECOND - 1, Math.floor((nowMs - s * 1000) / (1000 / TICKS_PER_SECOND)));
    const n = Math.min(cumulativeQuota(this.rate, SPREAD_TICKS, Math.min(k, SPREAD_TICKS - 1)) - this.doneThisSecond, this.remaining());
    if (n <= 0) return 0;
    this.doneThisSecond += n;
    this.emitted += n;
    return n;
  }

  private remaining(): number {
    return Math.max(0, this.total - this.emitted - this.missed);
  }

  status(): { rate: number; total: number; emitted: number; missed: number; startSecond: number; finished: boolean } {
    return { rate: this.rate, total: this.total, emitted: this.emitted, missed: this.missed, startSecond: this.startSecond, finished: this.finished };
  }
}
