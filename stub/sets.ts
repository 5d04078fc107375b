// Which worker owns which SET. A user belongs to SET `userId % sets` (as in the original server);
// SETs are dealt round-robin over the workers, so SET s lives in worker `s % workers` and nowhere
// else: its envelope queue, and the connections of all its users.
import { share } from '../common/split.ts';

/** SET of a user. */
export function setOfUser(user: number, sets: number): number {
  return user % sets;
}

/** Worker owning SET `set`. */
export function ownerOfSet(set: number, workers: number): number {
  return set % workers;
}

/** Worker that serves user `user`'s connection. */
export function ownerOfUser(user: number, sets: number, workers: number): number {
  return (user % sets) % workers;
}

/** SETs owned by worker `index`, in order. */
export function setsOf(index: number, sets: number, workers: number): number[] {
  const out: number[] = [];
  for (let s = index; s < sets; s += workers) out.push(s);
  return out;
}

/**
 * Served shakes per second that worker `index` may answer before overload: the sum of its SETs'
 * shares of `maxQps` (an exact integer split over the SETs, so the workers' caps sum to maxQps).
 */
export function capOf(index: number, maxQps: number, sets: number, workers: number): number {
  let cap = 0;
  for (const s of setsOf(index, sets, workers)) cap += share(maxQps, sets, s);
  return cap;
}
