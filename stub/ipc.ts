// Messages between the stub's primary process and its workers (node:cluster IPC).

/** Primary -> worker. */
export type ToWorker =
  | { t: 'gen'; first: number; count: number }
  | { t: 'notice'; id: number; amount: number; users: number[] }
  | { t: 'claimed'; req: number; id: number; amount: number }
  | { t: 'chat'; from: number; to: number; text: string }
  | { t: 'audit'; req: number }
  /** Adopt the connection whose native handle comes with this message: user `u`, unread bytes `r` (base64), `k` 1 for raw TCP. */
  | { t: 'adopt'; u: number; r?: string; k?: 1 };

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
  /** Set up (an acceptor: listening on `port`); 0 for a worker that only adopts. */
  | { t: 'up'; port: number; tcpPort?: number }
  /** A released connection (its handle comes with the message) for the worker owning user `u`'s SET. */
  | { t: 'ho'; u: number; r?: string; k?: 1 }
  | {
      t: 'sec';
      upTo: number;
      records: Array<[number, number[]]>;
      connections: number;
      ledger: WorkerLedger;
      /** Cumulative: connections this worker accepted and released to their owner, and adopted from others. */
      handedOver: number;
      adopted: number;
    }
  | { t: 'claim'; req: number; user: number; id: number }
  | { t: 'chat'; from: number; to: number; text: string }
  | { t: 'audit'; req: number; ledger: WorkerLedger };
