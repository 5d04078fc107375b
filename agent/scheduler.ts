// The firing loop of one agent worker. At the start of each synchronised second t it walks its users
// in order of their fixed sub-second offset (sorted once) and keeps those the rule makes fire in t
// (one integer test each); then a single timer steps through that list, waking at the next due
// offset (1 ms resolution) and sending everything due. No closure or timer per user.
//
// Never late in bulk: a shake is sent only while its own second is still open (before t*1000 +
// DEADLINE_MS on the synchronised clock). What cannot be sent by then — connection down, too many
// unanswered, the loop was blocked, whole seconds skipped — is counted `missed` in its second.
// The synchronised clock is read at every step, so a resync that moves the offset moves the next
// firing instants, and the seconds stay those of the NTP server.
import { fires, permute, permutation, secondKey, offsetMs, qpsAt, type Mode, type QpsChange, type Rule } from '../common/schedule.ts';
import { R, type SecondRecs } from './stats.ts';

/** Latest instant inside its second at which a shake is still sent (ms after the second starts). */
export const DEADLINE_MS = 950;
/** Whole seconds that a blocked loop accounts as missed when it wakes up (older ones are just gone). */
const MAX_SKIPPED_SECONDS = 10;

export interface Shaker {
  /** Sends the shake of local user i scheduled at `at`; false when it cannot (counted missed). */
  shake(i: number, at: number): boolean;
}

export interface SchedulerConfig {
  ids: Uint32Array;
  totalUsers: number;
  rule: Rule;
  mode: Mode;
  /** Spread window in ms (default 900) and the grid of the offsets in it (default 1). */
  spreadMs?: number;
  spreadStepMs?: number;
  now: () => number;
  recs: SecondRecs;
  shaker: Shaker;
  /** Called at the start of every second (the worker flushes its stats then). */
  onSecond?: (t: number) => void;
}

export class Scheduler {
  private readonly perm: Uint32Array;
  private readonly off: Uint16Array;
  /** Local indices sorted by offset. */
  private readonly order: Uint32Array;
  private readonly due: Uint32Array;
  private dueCount = 0;
  private cursor = 0;
  private second = -1;
  private changes: QpsChange[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** Shakes sent / missed since start (for tests and the final report). */
  sent = 0;
  missed = 0;

  constructor(private readonly cfg: SchedulerConfig) {
    const n = cfg.ids.length;
    const p = permutation(cfg.totalUsers);
    this.perm = new Uint32Array(n);
    this.off = new Uint16Array(n);
    for (let i = 0; i < n; i++) {
      this.perm[i] = permute(p, cfg.ids[i]);
      this.off[i] = offsetMs(cfg.mode, cfg.ids[i], cfg.spreadMs, cfg.spreadStepMs);
    }
    const idx = Array.from({ length: n }, (_, i) => i);
    idx.sort((a, b) => this.off[a] - this.off[b] || a - b);
    this.order = Uint32Array.from(idx);
    this.due = new Uint32Array(n);
  }

  setChanges(changes: QpsChange[]): void {
    this.changes = changes.slice().sort((a, b) => a.at - b.at);
  }

  qpsAt(t: number): number {
    return qpsAt(this.changes, t);
  }

  /** Local users that fire in second t, in offset order, into `due`; returns how many. */
  plan(t: number, out: Uint32Array = this.due): number {
    const q = this.qpsAt(t);
    if (q <= 0) return 0;
    const { rule, totalUsers: n } = this.cfg;
    const key = secondKey(rule, n, q, t);
    const order = this.order;
    const perm = this.perm;
    let k = 0;
    for (let j = 0; j < order.length; j++) {
      const i = order[j];
      if (fires(rule, n, q, key, perm[i])) out[k++] = i;
    }
    return k;
  }

  /**
   * Starts firing. Without `from`, with the next whole second (the current one is under way). With
   * `from` (a restarted worker takes over its users from second `from`): every second from `from` on
   * is accounted here; those already begun or past when it starts are missed whole.
   */
  start(from?: number): void {
    this.running = true;
    const now = this.cfg.now();
    const current = Math.floor(now / 1000);
    this.second = current;
    if (from !== undefined) {
      for (let s = Math.max(from, current - MAX_SKIPPED_SECONDS); s <= current; s++) this.missWhole(s);
      this.second = Math.max(current, from - 1);
    }
    this.dueCount = 0;
    this.cursor = 0;
    this.arm(Math.max(0, (this.second + 1) * 1000 - now));
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
  }

  private arm(ms: number): void {
    if (!this.running) return;
    // Only a step() called off the timer (a test's injected clock) finds a timer still pending.
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(this.onTimer, Math.max(0, Math.ceil(ms)));
  }

  /** Bound once: the only timer callback. Its timer has fired, so there is none to clear. */
  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.step();
  };

  /**
   * One pass of the loop at the clock's current time (cfg.now): closes the seconds that ended,
   * sends what is due, arms the timer for the next due offset. The timer calls it; a test with an
   * injected clock may call it directly.
   */
  step(): void {
    const now = this.cfg.now();
    const nowSecond = Math.floor(now / 1000);
    if (nowSecond > this.second) {
      // Finish the previous second: whatever is still due there is missed.
      this.closeSecond();
      const skippedFrom = Math.max(this.second + 1, nowSecond - MAX_SKIPPED_SECONDS);
      for (let s = skippedFrom; s < nowSecond; s++) this.missWhole(s);
      this.second = nowSecond;
      this.cfg.onSecond?.(nowSecond);
      this.dueCount = this.plan(nowSecond);
      this.cursor = 0;
    } else if (nowSecond < this.second) {
      // The clock stepped back (resync): wait for the second we are in to come round again.
      this.arm(Math.min(1000, this.second * 1000 - now));
      return;
    }
    const base = this.second * 1000;
    const elapsed = now - base;
    const due = this.due;
    const off = this.off;
    const shaker = this.cfg.shaker;
    if (elapsed < DEADLINE_MS) {
      let sent = 0;
      let missed = 0;
      const late = this.cfg.recs.rec(this.second).l;
      while (this.cursor < this.dueCount) {
        const i = due[this.cursor];
        const o = off[i];
        if (o > elapsed) break;
        this.cursor++;
        if (shaker.shake(i, base + o)) {
          sent++;
          // Lateness: when the shake went out against when it was due, in microseconds.
          late.record(Math.max(0, Math.round((this.cfg.now() - base - o) * 1000)));
        } else missed++;
      }
      if (sent || missed) {
        const c = this.cfg.recs.rec(this.second).c;
        c[R.sent] += sent;
        c[R.missed] += missed;
        this.sent += sent;
        this.missed += missed;
      }
    } else {
      this.closeSecond();
    }
    if (this.cursor < this.dueCount) {
      const next = off[due[this.cursor]];
      this.arm(Math.min(next, DEADLINE_MS) - (this.cfg.now() - base));
    } else {
      this.arm(base + 1000 - this.cfg.now());
    }
  }

  /** Counts the rest of the current second's list as missed. */
  private closeSecond(): void {
    const left = this.dueCount - this.cursor;
    if (left > 0 && this.second >= 0) {
      this.cfg.recs.add(this.second, R.missed, left);
      this.missed += left;
    }
    this.cursor = this.dueCount;
  }

  /** A second the loop never got to: every user due in it is missed. */
  private missWhole(s: number): void {
    const k = this.plan(s, new Uint32Array(this.due.length));
    if (k > 0) {
      this.cfg.recs.add(s, R.missed, k);
      this.missed += k;
    }
  }
}
