// One agent worker process: takes its slice of users from the parent ('init'), opens their
// connections (ConnectionPool), fires them on the schedule (Scheduler) and sends the parent its
// per-second deltas and connection counters at the start of every second. The parent owns the NTP
// clock and passes the offset; the worker adds it to its own base clock (same skew, same host).
import { preciseClock } from '../common/clock.ts';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ToParent, ToWorker, WorkerInit } from './ipc.ts';
import { ConnectionPool } from './pool.ts';
import { Scheduler } from './scheduler.ts';
import { SecondRecs } from './stats.ts';
import { ALL_FINAL, finalAtStartOf } from '../common/seconds.ts';

export class AgentWorker {
  readonly pool: ConnectionPool;
  readonly scheduler: Scheduler;
  private offsetMs: number;
  private readonly recs = new SecondRecs();
  private compacted = false;
  private readonly resumeAt: number | undefined;

  constructor(
    init: WorkerInit,
    private readonly toParent: (msg: ToParent) => void,
  ) {
    const base = preciseClock(init.skewMs);
    this.offsetMs = init.offsetMs;
    this.resumeAt = init.resumeAt;
    const now = () => base() + this.offsetMs;
    const ids = new Uint32Array(init.count);
    const ipOf = new Int32Array(init.count);
    const portOf = new Uint16Array(init.count);
    const nIps = init.sourceIps.length;
    const range = init.portHigh - init.portLow + 1;
    // Agents sharing source IPs on one host start at different ports (salted by their first user).
    // The range starts above the ports left to the host's other connections (autobindReserve).
    const salt = (init.first - init.localBase) % range;
    for (let i = 0; i < init.count; i++) {
      ids[i] = init.first + i;
      const j = init.localBase + i;
      ipOf[i] = nIps === 0 ? -1 : j % nIps;
      portOf[i] = nIps === 0 ? 0 : init.portLow + ((Math.floor(j / nIps) + salt) % range);
    }
    this.pool = new ConnectionPool({
      server: init.server,
      ids,
      ipOf,
      portOf,
      portLow: init.portLow,
      portHigh: init.portHigh,
      sourceIps: init.sourceIps,
      ramp: init.ramp,
      connectTimeoutMs: init.connectTimeoutMs,
      wsImpl: init.wsImpl,
      noticeAnswersShake: init.noticeAnswersShake,
      now,
      recs: this.recs,
    });
    this.scheduler = new Scheduler({
      ids,
      totalUsers: init.totalUsers,
      rule: init.rule,
      mode: init.mode,
      spreadMs: init.spreadMs,
      spreadStepMs: init.spreadStepMs,
      now,
      recs: this.recs,
      shaker: this.pool,
      onSecond: (t) => this.flush(finalAtStartOf(t)),
    });
    this.scheduler.setChanges(init.changes);
  }

  start(): void {
    this.pool.start();
    this.scheduler.start(this.resumeAt);
    this.toParent({ t: 'ready' });
  }

  /** Hands the second's deltas to the parent; `upTo`: the last second whose sends are final. */
  flush(upTo: number): void {
    if (!this.compacted && this.pool.connected === this.pool.n) {
      // The connect phase leaves tens of MB of garbage (HTTP upgrade requests, handshake buffers)
      // that V8 keeps committed; one full GC when everyone is in returns it (~7 KB per connection).
      this.compacted = true;
      fullGc();
    }
    const mem = process.memoryUsage();
    this.toParent({ t: 'sec', recs: this.recs.flush(), conn: { ...this.pool.report(), rss: mem.rss, heapUsed: mem.heapUsed }, upTo });
  }

  receive(msg: ToWorker): void {
    switch (msg.t) {
      case 'offset':
        this.offsetMs = msg.offsetMs;
        break;
      case 'qps':
        this.scheduler.setChanges(msg.changes);
        break;
      case 'stop':
        this.stop();
        break;
      default:
        break;
    }
  }

  stop(): void {
    this.scheduler.stop();
    this.flush(ALL_FINAL);
    this.pool.stop();
  }
}

/** A full garbage collection without --expose-gc on the command line. */
function fullGc(): void {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
  } catch {
    /* not available: fine, V8 shrinks on its own eventually */
  }
}
