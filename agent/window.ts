// How many handshakes an agent worker keeps in flight: a window that adapts to the server, as
// TCP's congestion window does, so that a fleet never queues more connection attempts at a server
// than it completes (the retry storm of a fixed ramp against a slow accept path).
// - slow start: +1 per login answered within the target latency (the window doubles per round trip);
// - then additive increase: +1/window per quick login (one more per round trip);
// - a login slower than the target: window x 0.75; a failed attempt (time-out, refused, reset):
//   window x 0.5; at most one cut per target interval, so a burst of bad news counts once.
// Times are passed in (ms), so the rules are tested with an injected clock.

export interface WindowOptions {
  /** Largest window (handshakes in flight). */
  max: number;
  /** Login latency (connect + handshake + login reply) above which the server is taken as saturated. */
  targetMs: number;
  initial?: number;
}

export class ConnectWindow {
  /** Current window (fractional: additive increase adds 1/size). */
  size: number;
  readonly max: number;
  readonly targetMs: number;
  private ssthresh: number;
  private lastCut = -Infinity;

  constructor(o: WindowOptions) {
    this.max = Math.max(1, o.max);
    this.targetMs = o.targetMs;
    this.size = Math.min(this.max, o.initial ?? 4);
    this.ssthresh = this.max;
  }

  /** The target latency for a handshake time-out: a twentieth of it, within 100 ms .. 1 s. */
  static targetFor(connectTimeoutMs: number): number {
    return Math.min(1000, Math.max(100, Math.round(connectTimeoutMs / 20)));
  }

  /** Handshakes that may be in flight now. */
  limit(): number {
    return Math.max(1, Math.floor(this.size));
  }

  /** A login came back `latencyMs` after its connect began. */
  succeeded(nowMs: number, latencyMs: number): void {
    if (latencyMs > this.targetMs) {
      this.cut(nowMs, 0.75);
      return;
    }
    this.size = Math.min(this.max, this.size + (this.size < this.ssthresh ? 1 : 1 / this.size));
  }

  /** An attempt failed (handshake time-out, refused, reset before the login reply). */
  failed(nowMs: number): void {
    this.cut(nowMs, 0.5);
  }

  private cut(nowMs: number, factor: number): void {
    if (nowMs - this.lastCut < this.targetMs) return;
    this.lastCut = nowMs;
    this.size = Math.max(1, this.size * factor);
    this.ssthresh = Math.max(2, this.size);
  }
}
