// What the agent's parent knows: its share of the fleet split over worker slots, the QPS timeline,
// the merged per-second records, and from them the answers of /stats, /health and /metrics and the
// samples for the controller. The parent's main (main.ts) wires it to the worker processes, the
// control endpoint and the push; nothing here forks, listens or prints.
import type { SyncedClock } from '../common/clock.ts';
import { PromText, snakeCase } from '../common/prometheus.ts';
import { addChange, countFiring, moduloExact, moduloRate, qpsAt, type QpsChange } from '../common/schedule.ts';
import { NONE_FINAL, finalAcross, finalAtStartOf } from '../common/seconds.ts';
import { share as splitShare } from '../common/split.ts';
import type { ConnReport, ToParent, WorkerInit } from './ipc.ts';
import type { AgentOptions } from './options.ts';
import { MAX_QUEUED_SAMPLES, type Sample } from './push.ts';
import { AgentStats, R, REC_FIELDS, entry } from './stats.ts';

/** Upper bounds (seconds) of the latency histogram on /metrics. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** QPS changes kept: the last 10 minutes (samples and /stats look back that far) and the future. */
const CHANGE_HORIZON_SECONDS = 600;

/** One worker's slice of the users and what the parent knows of it. */
export interface Slot {
  index: number;
  init: WorkerInit;
  conn: ConnReport | undefined;
  /** Last second whose sends this worker has reported final (or the parent has counted missed). */
  upTo: number;
  /**
   * Its worker died: until the replacement takes over (from second `resumeAt`), every due shake of
   * its users is missed, and the parent counts them so each second still adds up to the share.
   */
  orphaned: boolean;
  resumeAt: number | undefined;
}

export interface AgentShare {
  id: string;
  first: number;
  count: number;
  workers: number;
  /** Per worker, the settings every slice shares (its users, offsets and `changes` are filled in here). */
  base: Omit<WorkerInit, 't' | 'index' | 'first' | 'count' | 'localBase' | 'ramp' | 'offsetMs' | 'changes'>;
}

export class AgentState {
  readonly stats = new AgentStats();
  readonly slots: Slot[] = [];
  readonly startSecond: number;
  changes: QpsChange[];

  constructor(
    private readonly o: AgentOptions,
    readonly share: AgentShare,
    private readonly clock: SyncedClock,
  ) {
    this.changes = [{ at: 0, qps: o.qps }];
    this.startSecond = this.nowSecond();
    let localBase = 0;
    for (let i = 0; i < share.workers; i++) {
      const n = splitShare(share.count, share.workers, i);
      this.slots.push({
        index: i,
        upTo: NONE_FINAL,
        orphaned: false,
        resumeAt: undefined,
        conn: undefined,
        init: {
          ...share.base,
          t: 'init',
          index: i,
          first: share.first + localBase,
          count: n,
          localBase,
          ramp: Math.max(1, Math.floor(o.ramp / share.workers)),
          offsetMs: 0,
          changes: this.changes,
        },
      });
      localBase += n;
    }
  }

  nowSecond(): number {
    return Math.floor(this.clock.now() / 1000);
  }

  qpsNow(): number {
    return qpsAt(this.changes, this.nowSecond());
  }

  connections(): number {
    return this.slots.reduce((a, s) => a + (s.conn?.connected ?? 0), 0);
  }

  /** What a QPS means under the modulo rule when it does not divide the fleet ('' otherwise). */
  describeRate(q: number): string {
    const { rule, totalUsers } = this.o;
    return rule === 'modulo' && !moduloExact(totalUsers, q)
      ? `; modulo rule: ${q} does not divide ${totalUsers}, the fleet really fires ${moduloRate(totalUsers, q).toFixed(2)}/s on average (use --rule window for exact)`
      : '';
  }

  /** Schedules fleet QPS `qps` from second `at`; returns the timeline to hand the workers. */
  setQps(qps: number, at: number): QpsChange[] {
    let changes = addChange(this.changes, { at, qps });
    const horizon = this.nowSecond() - CHANGE_HORIZON_SECONDS;
    const old = changes.filter((c) => c.at <= horizon);
    changes = [...old.slice(-1), ...changes.filter((c) => c.at > horizon)];
    this.changes = changes;
    return changes;
  }

  // ---- the workers ---------------------------------------------------------------------------

  /** The 'init' message for slot `index`'s (new) process; a replacement takes over from the next second. */
  initFor(index: number): WorkerInit {
    const slot = this.slots[index];
    if (slot.orphaned) slot.resumeAt = this.nowSecond() + 1;
    return { ...slot.init, offsetMs: this.clock.offsetMs, changes: this.changes, ...(slot.orphaned ? { resumeAt: slot.resumeAt } : {}) };
  }

  /** A worker's report of the second that began: its records, its connection counters. */
  workerReported(index: number, msg: Extract<ToParent, { t: 'sec' }>): void {
    const slot = this.slots[index];
    this.countOrphaned(slot, msg.upTo);
    for (const [second, counters, hist, late] of msg.recs) this.stats.merge(second, counters, hist, late);
    slot.conn = msg.conn;
    slot.upTo = Math.max(slot.upTo, msg.upTo);
  }

  /** A worker died: what it had not reported final is lost with it; from there on its due shakes are missed. */
  workerDied(index: number): void {
    const slot = this.slots[index];
    slot.conn = undefined;
    if (!slot.orphaned && slot.upTo === NONE_FINAL) slot.upTo = finalAtStartOf(this.nowSecond());
    slot.orphaned = true;
    slot.resumeAt = undefined;
  }

  /** Counts the due shakes of an orphaned slot's users missed, second by second up to `last`. */
  private countOrphaned(slot: Slot, last: number): void {
    if (!slot.orphaned) return;
    const end = Math.min(last, slot.resumeAt === undefined ? last : slot.resumeAt - 1);
    const missed = new Array<number>(REC_FIELDS.length).fill(0);
    for (let s = slot.upTo + 1; s <= end; s++) {
      missed[R.missed] = countFiring(this.o.rule, this.o.totalUsers, qpsAt(this.changes, s), s, slot.init.first, slot.init.count);
      this.stats.merge(s, missed, '');
      slot.upTo = s;
    }
    if (slot.resumeAt !== undefined && slot.upTo >= slot.resumeAt - 1) slot.orphaned = false;
  }

  /** Last second every worker has reported (or the parent counted missed for a dead one): nothing half-counted goes out. */
  completeUpTo(): number {
    const now = this.nowSecond();
    for (const s of this.slots) this.countOrphaned(s, finalAtStartOf(now));
    return finalAcross(
      now,
      this.slots.map((s) => s.upTo),
    );
  }

  // ---- answers -------------------------------------------------------------------------------

  /** GET /stats: the complete seconds from `since` (default: the last minute). */
  statsBody(since: number | undefined) {
    const upTo = this.completeUpTo();
    const from = Math.max(since ?? upTo - 59, this.startSecond);
    const c = this.clock.status();
    const qps = this.qpsNow();
    return {
      id: this.share.id,
      connections: this.connections(),
      qps,
      offsetMs: c.offsetMs,
      uncertaintyMs: c.uncertaintyMs,
      clock: c.source,
      rate: this.o.rule === 'modulo' ? moduloRate(this.o.totalUsers, qps) : qps,
      seconds: this.stats.range(Math.max(from, upTo - 599), upTo),
    };
  }

  /** GET /health, given each worker's pid and whether it is alive. */
  health(workers: ReadonlyArray<{ pid: number; alive: boolean; restarts: number }>) {
    const ws = this.slots.map((s, i) => ({ index: s.index, pid: workers[i].pid, alive: workers[i].alive, users: s.init.count, ...(s.conn ?? {}), restarts: workers[i].restarts }));
    return {
      ok: ws.every((w) => w.alive),
      id: this.share.id,
      pid: process.pid,
      users: this.share.count,
      connections: this.connections(),
      qps: this.qpsNow(),
      clock: this.clock.status(),
      workers: ws,
    };
  }

  /** GET /metrics (Prometheus text). */
  metrics(): string {
    const p = new PromText();
    const uncertaintyMs = this.clock.status().uncertaintyMs;
    p.gauge('hongbao_agent_connections', 'Logged-in connections.', this.connections());
    p.gauge('hongbao_agent_users', 'Users of this agent.', this.share.count);
    p.gauge('hongbao_agent_qps', 'Fleet QPS in effect.', this.qpsNow());
    p.gauge('hongbao_agent_clock_offset_seconds', 'Offset added to the local clock (NTP).', this.clock.offsetMs / 1000);
    p.gauge('hongbao_agent_clock_uncertainty_seconds', 'Half the round trip of the best NTP sample (NaN: not synchronised).', uncertaintyMs < 0 ? NaN : uncertaintyMs / 1000);
    REC_FIELDS.forEach((f, i) => p.counter(`hongbao_agent_${snakeCase(f)}_total`, `Sum of per-second ${f}.`, this.stats.totals[i]));
    p.histogram('hongbao_agent_shake_latency_seconds', 'Reply time minus scheduled send time of every answered shake.', this.stats.latency, 1e-6, LATENCY_BUCKETS);
    return p.text();
  }

  /** The controller's sample of second `s`. */
  sampleOf(s: number): Sample {
    const r = this.stats.get(s);
    const c = this.clock.status();
    return { id: this.share.id, ...entry(s, r), qps: qpsAt(this.changes, s), connections: this.connections(), offsetMs: c.offsetMs, uncertaintyMs: c.uncertaintyMs, hist: r && r.h.total ? r.h.encode() : '' };
  }

  /** Samples of the seconds already pushed (up to `lastPushed`) from `from` on, at most a queue's worth: for a controller that restarted. */
  replay(from: number, lastPushed: number): Sample[] {
    const out: Sample[] = [];
    for (let s = Math.max(from, this.startSecond, lastPushed - MAX_QUEUED_SAMPLES + 1); s <= lastPushed; s++) out.push(this.sampleOf(s));
    return out;
  }
}
