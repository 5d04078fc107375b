// Envelope ids and amounts. Generator envelopes are numbered from 1 and their amount is a pure
// function of the id, so workers need only id ranges (each keeps the ids of the SETs it owns).
// Envelopes of the sending service are numbered from 2^31 so the two kinds never collide.
export const FIRST_GENERATED_ID = 1;
export const LAST_GENERATED_ID = 0x7fffffff;
export const FIRST_SENT_ID = 0x80000000;
export const MAX_GENERATED_AMOUNT = 20000;

/** Amount in cents (1..20000) of generator envelope `id`. */
export function amountOf(id: number): number {
  return ((Math.imul(id, 0x9e3779b1) >>> 0) % MAX_GENERATED_AMOUNT) + 1;
}

/** SET of generator envelope `id`: ids are dealt round-robin over the SETs. */
export function setOf(id: number, sets: number): number {
  return (id - FIRST_GENERATED_ID) % sets;
}
