// Deterministic integer splits: a total divided over parts so that the parts sum exactly to it.

/** Share of part `index` (0-based) when `total` is split over `parts`: the first `total % parts` get one more. */
export function share(total: number, parts: number, index: number): number {
  const base = Math.floor(total / parts);
  return base + (index < total % parts ? 1 : 0);
}

/** Amount due by tick `k` (0-based, inclusive) of `ticks` equal ticks when `total` is spread over them. */
export function cumulativeQuota(total: number, ticks: number, k: number): number {
  return Math.floor((total * (k + 1)) / ticks);
}
