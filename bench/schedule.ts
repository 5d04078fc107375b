// The bench's shake schedule: the `window` rule of the agent (README: hongbao agent), exact for any rate. With Q shakes per
// second over N users, the shakes of epoch second t go to one run of Q consecutive user ids on the
// ring of N users, starting at (t*Q) mod N. When Q <= N that is exactly "user u fires in second t
// when (u - t*Q) mod N < Q". When Q > N (fewer connections than shakes per second, e.g. one stub
// worker cannot hold 20000 sockets under the 20000-fd limit) the run goes round the ring more than
// once: lap r of the second fires the users of its part of the run, so a user fires at most
// ceil(Q/N) times a second and the fleet total is still exactly Q.
//
// Within a second each firing has a fixed offset: the first 900 ms are SLOTS slots of SLOT_MS, and
// user u fires in slot (u mod SLOTS). With L laps the laps interleave so that each is spread over the
// whole 900 ms: lap r owns slots r, r+L, r+2L, ... (S = floor(SLOTS / L) of them) and user u fires in
// its (u mod S)-th one, slot r + L*(u mod S). A load process sends one batch per slot.

export const SLOT_MS = 10;
export const SLOTS = 90;

/** Laps of a second: how many times the busiest user fires per second (0 when idle). */
export function lapsOf(qps: number, users: number): number {
  return qps <= 0 || users <= 0 ? 0 : Math.ceil(qps / users);
}

/** Slots each lap owns when a second has `laps` laps (lap r owns slots r, r+laps, ...). */
export function slotsPerLap(laps: number): number {
  return Math.floor(SLOTS / laps);
}

/** Start of second t's firing run: (t * Q) mod N, computed without overflowing 2^53. */
export function windowStart(t: number, qps: number, users: number): number {
  return ((t % users) * (qps % users)) % users;
}

/**
 * Writes the ranges of users firing in lap `lap` of second t as [lo0, hi0, lo1, hi1] into `out` and
 * returns how many ranges there are (0, 1 or 2).
 */
export function firingRanges(t: number, qps: number, users: number, lap: number, out: Float64Array): number {
  const len = Math.min(users, qps - lap * users);
  if (len <= 0 || users <= 0) return 0;
  if (len === users) {
    out[0] = 0;
    out[1] = users;
    return 1;
  }
  const w = windowStart(t, qps, users);
  const end = w + len;
  out[0] = w;
  out[1] = Math.min(end, users);
  if (end <= users) return 1;
  out[2] = 0;
  out[3] = end - users;
  return 2;
}

/** First id >= lo with id mod `period` == `slot`. */
export function firstInSlot(lo: number, slot: number, period: number): number {
  return lo + ((slot - (lo % period) + period) % period);
}
