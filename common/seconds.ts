// When is second t complete? One definition for the agent and the stub.
//
// A process counts second t while it runs and closes it when second t+1 begins: from then on its
// counts of t are final (a late reply may still amend one, and is then reported again). Whoever
// reports counts says how far they are final ("final up to" a second); a merger of several sources
// (the agent's parent over its workers, the stub's primary over its workers) is final up to the
// smallest of theirs, and never past the second before the current one. A second's replies may
// arrive during the next second, so what goes to the controller waits REPLY_SECONDS more.

/** Nothing is final yet. */
export const NONE_FINAL = -1;
/** A source that stopped: everything it counted is final. */
export const ALL_FINAL = Number.MAX_SAFE_INTEGER;
/** Seconds a second's replies may still take once it is final. */
export const REPLY_SECONDS = 1;

/** At the start of second t, every second before it is final. */
export function finalAtStartOf(t: number): number {
  return t - 1;
}

/** Final up to, across sources (each one's own "final up to"), at most the second before `now`. */
export function finalAcross(now: number, upTos: Iterable<number>): number {
  let upTo = finalAtStartOf(now);
  for (const u of upTos) if (u < upTo) upTo = u;
  return upTo;
}

/** The last second whose replies are in too, given the last final one. */
export function settledUpTo(finalUpTo: number): number {
  return finalUpTo - REPLY_SECONDS;
}
