// The agent's notion of time: a base clock (Date.now(), plus an optional fake skew that tests use to
// simulate a VM whose clock is off) corrected by an offset measured against an NTP server.
//
// ntp-client only hands back the server's transmit timestamp, so the round trip is timed here:
// offset = serverTime - (send + receive) / 2, uncertainty = rtt / 2 (the server's stamp lies
// somewhere inside the round trip). Of several samples the one with the lowest round trip wins
// (the least queueing, so the tightest bound). Resyncs replace the offset only with a sample that is
// not much worse than the current one's bound, so a noisy network cannot move the firing seconds.
import ntp from 'ntp-client';

export type BaseClock = () => number;

/** Date.now() shifted by `skewMs` (a hidden clock error; 0 in production). Millisecond resolution. */
export function skewedClock(skewMs = 0): BaseClock {
  if (!skewMs) return Date.now;
  return () => Date.now() + skewMs;
}

/**
 * The wall clock with sub-millisecond resolution (for latencies of a fraction of a ms and tighter
 * NTP round trips): performance.now() anchored to Date.now(). Re-anchored when it drifts more than
 * `maxDriftMs` from Date.now() (checked at most every 250 ms), so a stepped system clock is
 * followed within a quarter second. Plus `skewMs`, the hidden test skew.
 */
export function preciseClock(skewMs = 0, maxDriftMs = 1): BaseClock {
  const perf = globalThis.performance;
  let wallAnchor = Date.now();
  let perfAnchor = perf.now();
  let nextCheck = perfAnchor + 250;
  return () => {
    const p = perf.now();
    let t = wallAnchor + (p - perfAnchor);
    if (p >= nextCheck) {
      nextCheck = p + 250;
      const wall = Date.now();
      // Date.now() truncates to the ms: the precise time lies in [wall, wall + 1).
      if (t < wall - maxDriftMs || t > wall + 1 + maxDriftMs) {
        wallAnchor = wall + 0.5;
        perfAnchor = p;
        t = wallAnchor;
      }
    }
    return t + skewMs;
  };
}

export interface NtpTarget {
  host: string;
  port: number;
}

/** Parses `HOST[:PORT]` (port 123 by default); returns undefined for `off`. Throws on nonsense. */
export function parseNtpTarget(text: string): NtpTarget | undefined {
  if (text === 'off') return undefined;
  const m = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?$/.exec(text);
  if (!m) throw new Error('HOST[:PORT] or off');
  const port = m[2] === undefined ? 123 : Number(m[2]);
  if (port < 1 || port > 65535) throw new Error('HOST[:PORT] or off with PORT from 1 to 65535');
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

export interface NtpSample {
  /** serverTime - midpoint(send, receive), in ms. */
  offsetMs: number;
  rttMs: number;
}

/** One request/answer: asks for the server's time and times the round trip on `base`. */
export type NtpQuery = (target: NtpTarget, timeoutMs: number) => Promise<number>;

/** The real query through ntp-client; resolves to the server's transmit time (ms since epoch). */
export const ntpClientQuery: NtpQuery = (target, timeoutMs) =>
  new Promise<number>((resolve, reject) => {
    // ntp-client's timeout is a module global (10 s by default); keep it bounded.
    (ntp as { ntpReplyTimeout: number }).ntpReplyTimeout = timeoutMs;
    ntp.getNetworkTime(target.host, target.port, (err: unknown, date: Date | null) => {
      if (err || !date) reject(new Error(typeof err === 'string' ? err : ((err as Error)?.message ?? 'no answer')));
      else resolve(date.getTime());
    });
  });

/** Takes one sample: offset from the midpoint of send and receive on the base clock. */
export async function ntpSample(target: NtpTarget, base: BaseClock, query: NtpQuery = ntpClientQuery, timeoutMs = 1000): Promise<NtpSample> {
  const send = base();
  const server = await query(target, timeoutMs);
  const recv = base();
  return { offsetMs: server - (send + recv) / 2, rttMs: Math.max(0, recv - send) };
}

/** Takes `count` samples (failures are skipped) and returns the one with the lowest round trip. */
export async function bestSample(
  target: NtpTarget,
  base: BaseClock,
  count: number,
  query: NtpQuery = ntpClientQuery,
  timeoutMs = 1000,
): Promise<{ best: NtpSample | undefined; errors: string[] }> {
  let best: NtpSample | undefined;
  const errors: string[] = [];
  for (let i = 0; i < count; i++) {
    try {
      const s = await ntpSample(target, base, query, timeoutMs);
      if (!best || s.rttMs < best.rttMs) best = s;
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  return { best, errors };
}

export interface ClockStatus {
  source: string;
  synced: boolean;
  offsetMs: number;
  uncertaintyMs: number;
  lastSyncMs: number;
  syncs: number;
  failures: number;
  lastError: string | undefined;
}

/**
 * Synchronised time: base() + offset. `now()` is the only time the scheduler reads. Without a
 * target (`--ntp off`) the offset stays 0 and the status says the local clock is used.
 */
export class SyncedClock {
  offsetMs = 0;
  uncertaintyMs = Infinity;
  private syncs = 0;
  private failures = 0;
  private lastError: string | undefined;
  private lastSyncMs = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly base: BaseClock,
    readonly target: NtpTarget | undefined,
    private readonly opts: { samples?: number; query?: NtpQuery; timeoutMs?: number } = {},
  ) {}

  now(): number {
    return this.base() + this.offsetMs;
  }

  /**
   * Measures the offset. A new best sample replaces the current offset when its bound is not more
   * than twice as wide as the current one's, or the current one is older than 10 minutes.
   */
  async sync(): Promise<NtpSample | undefined> {
    if (!this.target) return undefined;
    const { best, errors } = await bestSample(this.target, this.base, this.opts.samples ?? 8, this.opts.query, this.opts.timeoutMs ?? 1000);
    if (!best) {
      this.failures++;
      this.lastError = errors[errors.length - 1] ?? 'no samples';
      return undefined;
    }
    const u = best.rttMs / 2;
    const stale = this.base() - this.lastSyncMs > 600_000;
    if (this.syncs === 0 || stale || u <= 2 * this.uncertaintyMs + 1) {
      this.offsetMs = best.offsetMs;
      this.uncertaintyMs = u;
      this.lastSyncMs = this.base();
    }
    this.syncs++;
    this.lastError = errors.length ? errors[errors.length - 1] : undefined;
    return best;
  }

  /** Resyncs every `periodMs`; `onSync` hears about each result (to pass the offset to workers). */
  startResync(periodMs: number, onSync: (status: ClockStatus) => void): void {
    if (!this.target) return;
    const run = () => {
      this.sync().then(
        () => onSync(this.status()),
        () => onSync(this.status()),
      );
    };
    this.timer = setInterval(run, periodMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  status(): ClockStatus {
    return {
      source: this.target ? `ntp ${this.target.host}:${this.target.port}` : 'local clock (--ntp off)',
      synced: this.target !== undefined && this.syncs > 0 && Number.isFinite(this.uncertaintyMs),
      offsetMs: Math.round(this.offsetMs * 1000) / 1000,
      uncertaintyMs: Number.isFinite(this.uncertaintyMs) ? Math.round(this.uncertaintyMs * 1000) / 1000 : -1,
      lastSyncMs: this.lastSyncMs,
      syncs: this.syncs,
      failures: this.failures,
      lastError: this.lastError,
    };
  }
}
