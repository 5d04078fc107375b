// The sending service's envelopes: each names a few users; each named user may claim once; the
// portions are random ("double the mean" rule) and the last claimer gets the remainder, so the
// portions always sum exactly to the envelope's amount.
import { FIRST_SENT_ID } from './envelopes.ts';

interface SentEnvelope {
  left: number;
  users: number[];
  claimedBy: Set<number>;
}

export interface LedgerTotals {
  sent: number;
  sentAmount: number;
  claims: number;
  claimed: number;
  claimedAmount: number;
  remainingAmount: number;
  open: number;
}

export class SentLedger {
  private nextId = FIRST_SENT_ID;
  private readonly open = new Map<number, SentEnvelope>();
  sent = 0;
  sentAmount = 0;
  /** Claim requests on sent envelopes, successful or not. */
  claims = 0;
  /** Successful claims. */
  claimed = 0;
  claimedAmount = 0;

  constructor(private readonly random: () => number = Math.random) {}

  /** Records a new envelope of `amount` cents naming `users` (distinct); returns its id. */
  create(amount: number, users: number[]): number {
    if (!Number.isInteger(amount) || amount < users.length) throw new RangeError(`amount ${amount} cannot give ${users.length} users a cent each`);
    if (this.nextId > 0xffffffff) throw new RangeError('sent envelope ids are exhausted (2^31 per stub run)');
    const id = this.nextId++;
    this.open.set(id, { left: amount, users: [...users], claimedBy: new Set() });
    this.sent++;
    this.sentAmount += amount;
    return id;
  }

  /** Claims envelope `id` for `user`: the portion in cents, or 0 if not named, already claimed or unknown. */
  claim(id: number, user: number): number {
    this.claims++;
    const env = this.open.get(id);
    if (!env || !env.users.includes(user) || env.claimedBy.has(user)) return 0;
    const claimersLeft = env.users.length - env.claimedBy.size;
    let portion: number;
    if (claimersLeft === 1) {
      portion = env.left;
    } else {
      // Random in [1, 2 * mean], keeping at least one cent for each later claimer.
      const max = Math.min(env.left - (claimersLeft - 1), Math.floor((2 * env.left) / claimersLeft));
      portion = 1 + Math.floor(this.random() * Math.max(1, max));
      if (portion > max) portion = max;
    }
    env.left -= portion;
    env.claimedBy.add(user);
    if (env.claimedBy.size === env.users.length) this.open.delete(id);
    this.claimed++;
    this.claimedAmount += portion;
    return portion;
  }

  totals(): LedgerTotals {
    return {
      sent: this.sent,
      sentAmount: this.sentAmount,
      claims: this.claims,
      claimed: this.claimed,
      claimedAmount: this.claimedAmount,
      remainingAmount: this.sentAmount - this.claimedAmount,
      open: this.open.size,
    };
  }

  /** Sum of what is left in open envelopes: equals remainingAmount unless the ledger is broken. */
  openAmount(): number {
    let sum = 0;
    for (const env of this.open.values()) sum += env.left;
    return sum;
  }
}

/** `n` distinct user ids drawn uniformly from [min, max]. */
export function pickUsers(n: number, min: number, max: number, random: () => number = Math.random): number[] {
  const span = max - min + 1;
  if (span < n) throw new RangeError(`cannot pick ${n} distinct users from ${span}`);
  const out: number[] = [];
  while (out.length < n) {
    const u = min + Math.floor(random() * span);
    if (!out.includes(u)) out.push(u);
  }
  return out;
}
