// The per-second counters that cross process boundaries, in one place: the stub's (GET /stats of
// the stub, merged by the controller) and the agent's (GET /stats of the agent, the samples it pushes).

/** Counters the stub keeps per epoch second, in the order its workers send them. */
export const STUB_SECOND_FIELDS = [
  'shakes',
  'won',
  'empty',
  'overload',
  'logins',
  'notices',
  'claims',
  'claimedAmount',
  'chats',
  'errors',
  /** Connections dropped because their reader let too many bytes wait (wslite maxQueuedBytes). */
  'slowReaders',
  'generated',
  'sent',
  'rxPackets',
  'txPackets',
] as const;

/** Counters the agent keeps per scheduled second, in the order its workers send them. */
export const AGENT_SECOND_FIELDS = ['sent', 'answered', 'won', 'empty', 'overload', 'missed', 'errors', 'claims', 'claimedAmount'] as const;

/** JSON-schema properties `{field: {type: 'number', ...extra}}` for a list of counter fields. */
export function numberProperties<F extends string>(fields: readonly F[], extra: Record<string, unknown> = {}): Record<F, { type: 'number' }> {
  return Object.fromEntries(fields.map((f) => [f, { type: 'number', ...extra }])) as Record<F, { type: 'number' }>;
}
