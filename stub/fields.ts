// The per-second counters of the stub, in the order workers send them to the primary.
import { STUB_SECOND_FIELDS } from '../common/fields.ts';

export const FIELDS = STUB_SECOND_FIELDS;
export type Field = (typeof FIELDS)[number];
export const N_FIELDS = FIELDS.length;

/** Index of each field in a counters array. */
export const F = Object.fromEntries(FIELDS.map((f, i) => [f, i])) as { readonly [K in Field]: number };

export type SecondStats = { second: number } & { [K in Field]: number };
