// Messages between the stub's primary process and its workers (node:cluster IPC).

/** Primary -> worker. */
export type ToWorker =
  | { t: 'gen'; first: number; count: number }
  | { t: 'notice'; id: number; amount: number; users: number[] }
  | { t: 'claimed'; req: number; id: number; amount: number }
  | { t: 'chat'; from: number; to: number; text: string }
  | { t: 'audit'; req: number };

/** Cumulative envelope counts a worker reports for the audit. */
export interface WorkerLedger {
  received: number;
  receivedAmount: number;
  won: number;
  wonAmount: number;
  queued: number;
  queuedAmount: number;
}

/** Worker -> primary. */
export type ToPrimary =
  | { t: 'sec'; upTo: number; records: Array<[number, number[]]>; connections: number; ledger: WorkerLedger }
  | { t: 'claim'; req: number; user: number; id: number }
  | { t: 'chat'; from: number; to: number; text: string }
  | { t: 'audit'; req: number; ledger: WorkerLedger };
