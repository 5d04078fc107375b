// Pure schedule math of the agent (README: hongbao agent, Schedule): which users fire in synchronised epoch second t, and when
// inside the second. No coordinator: every agent evaluates the same functions for its own users,
// so the fleet's sum per second follows from the math alone.
//
// Both rules act on a fixed permutation p(u) of the ids [0, N) (a bijective affine map mod N,
// `permute`), so that neighbouring ids — which live on the same agent, worker and source IP — do
// not fire together. A bijection keeps every count exact: the number of users with p(u) in a set
// equals the size of that set.
//
// - modulo (the original experiment's): g = floor(N / Q); u fires when t % g == p(u) % g. Users
//   per second = #{v in [0, N): v % g == t % g}, i.e. floor(N / g) or ceil(N / g). Exact (= Q)
//   only when Q divides N; otherwise the real rate is N / g on average (see moduloRate()).
// - window (exact for any Q): u fires when (p(u) - t*Q) mod N < Q: a window of Q consecutive
//   permuted ids slides by Q each second, so every second has exactly Q firing users and every
//   user fires Q/N of the seconds, evenly spaced.
//
// Sub-second placement: `spread` gives each user a fixed offset in [0, 900) ms derived from a hash
// of its id (requests arrive in the second they belong to), on a grid of `step` ms (10 by default:
// 90 instants a second, so an agent wakes up 90 times a second, not up to 900, and the server reads
// several requests per wake-up); `burst` fires at offset 0.

export type Rule = 'modulo' | 'window';
export type Mode = 'spread' | 'burst';

/** The spread window: offsets lie in [0, SPREAD_MS) ms. */
export const SPREAD_MS = 900;

/** (a * b) mod m for integers 0 <= a, b < m <= 2^32, without leaving the safe-integer range. */
export function mulMod(a: number, b: number, m: number): number {
  const hi = Math.floor(b / 65536);
  const lo = b % 65536;
  // a*hi < 2^48, (x mod m)*65536 < 2^48, a*lo < 2^48: all exact in doubles.
  return (((a * hi) % m) * 65536 + a * lo) % m;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Parameters of the fixed permutation of [0, n): p(u) = (a*u + c) mod n with gcd(a, n) = 1. */
export interface Permutation {
  n: number;
  a: number;
  c: number;
}

/** The permutation every agent uses for a fleet of n users (deterministic in n alone). */
export function permutation(n: number): Permutation {
  if (n <= 2) return { n, a: 1, c: 0 };
  // A multiplier near n/phi spreads neighbours far apart; step to the next one coprime to n.
  let a = Math.max(1, Math.floor(n * 0.6180339887498949)) % n;
  if (a === 0) a = 1;
  while (gcd(a, n) !== 1) a = (a + 1) % n || 1;
  const c = Math.floor(n / 3);
  return { n, a, c };
}

export function permute(p: Permutation, u: number): number {
  return (mulMod(p.a, u % p.n, p.n) + p.c) % p.n;
}

/** Group size of the modulo rule for fleet size n and fleet QPS q (q >= 1). */
export function groupSize(n: number, q: number): number {
  return Math.max(1, Math.floor(n / q));
}

/** Average per-second rate the modulo rule really gives (q only when q divides n). */
export function moduloRate(n: number, q: number): number {
  if (q <= 0) return 0;
  return n / groupSize(n, q);
}

/** Users firing in second t under the modulo rule: floor(n/g) or ceil(n/g). */
export function moduloCount(n: number, q: number, t: number): number {
  if (q <= 0) return 0;
  const g = groupSize(n, q);
  const r = t % g;
  return Math.floor(n / g) + (r < n % g ? 1 : 0);
}

/** True when the modulo rule hits exactly q users every second. */
export function moduloExact(n: number, q: number): boolean {
  return q === 0 || n % q === 0;
}

/** Start of the window rule's window in second t: (t*q) mod n, without overflow. */
export function windowBase(n: number, q: number, t: number): number {
  return mulMod(t % n, q % n, n);
}

/**
 * Does a user whose permuted id is `v` fire in second t? `key` is the precomputed per-second value
 * from `secondKey` (t % g for modulo, the window base for window) so the per-user test is one or
 * two integer operations.
 */
export function fires(rule: Rule, n: number, q: number, key: number, v: number): boolean {
  if (q <= 0) return false;
  if (rule === 'modulo') return v % groupSize(n, q) === key;
  if (q >= n) return true;
  const d = v - key;
  return (d < 0 ? d + n : d) < q;
}

/** Per-second key of `fires`: t % g for modulo, (t*q) mod n for window. */
export function secondKey(rule: Rule, n: number, q: number, t: number): number {
  if (q <= 0) return 0;
  return rule === 'modulo' ? t % groupSize(n, q) : windowBase(n, q, t);
}

/** Users of the whole fleet firing in second t (exactly q for window). */
export function fleetCount(rule: Rule, n: number, q: number, t: number): number {
  if (q <= 0) return 0;
  if (rule === 'window') return Math.min(q, n);
  return moduloCount(n, q, t);
}

/** Default grid of the spread offsets, in ms. */
export const SPREAD_STEP_MS = 10;

/**
 * Fixed sub-second offset of user u in ms: [0, spreadMs) in spread mode (900 by default), on a grid
 * of `stepMs` (1: any millisecond), 0 in burst mode. A narrower window leaves more slack for
 * requests to arrive within their second on a loaded host (the agent's --spread-ms); a coarser grid
 * costs less CPU per shake on both sides (the agent's --spread-step).
 */
export function offsetMs(mode: Mode, u: number, spreadMs = SPREAD_MS, stepMs = 1): number {
  if (mode === 'burst') return 0;
  // 32-bit integer hash (lowbias32), uniform enough to spread any id range over the window.
  let x = u >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  const step = Math.max(1, Math.min(stepMs, spreadMs));
  return Math.floor(((x >>> 0) / 4294967296) * Math.ceil(spreadMs / step)) * step;
}

/** Count of users in [first, first+count) that fire in second t (one pass over them: tests, and a dead worker's seconds). */
export function countFiring(rule: Rule, n: number, q: number, t: number, first: number, count: number): number {
  const p = permutation(n);
  const key = secondKey(rule, n, q, t);
  let k = 0;
  for (let u = first; u < first + count; u++) if (fires(rule, n, q, key, permute(p, u))) k++;
  return k;
}

/** A QPS timeline: the fleet QPS in effect from epoch second `at` on. */
export interface QpsChange {
  at: number;
  qps: number;
}

/** The change in effect in second t (the last with `at` <= t), given changes sorted by `at`. */
export function changeAt<C extends QpsChange>(changes: readonly C[], t: number): C | undefined {
  let cur: C | undefined;
  for (const c of changes) {
    if (c.at > t) break;
    cur = c;
  }
  return cur;
}

/** QPS in effect in second t (0 before any change), given changes sorted by `at`. */
export function qpsAt(changes: readonly QpsChange[], t: number): number {
  return changeAt(changes, t)?.qps ?? 0;
}

/** Phases of a constant rate [from, to) as a QPS timeline: each from its `from`, 0 after its `to` unless another starts there. */
export function phasesToChanges(phases: ReadonlyArray<{ qps: number; from: number; to: number }>): QpsChange[] {
  const out: QpsChange[] = [];
  for (const p of [...phases].sort((a, b) => a.from - b.from)) {
    if (out.length && out[out.length - 1].at === p.from) out.pop();
    out.push({ at: p.from, qps: p.qps }, { at: p.to, qps: 0 });
  }
  return out;
}

/** Inserts a change (replacing one at the same second, dropping later ones already superseded). */
export function addChange(changes: QpsChange[], change: QpsChange): QpsChange[] {
  const kept = changes.filter((c) => c.at < change.at);
  kept.push(change);
  return kept;
}
