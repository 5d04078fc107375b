// Messages between the agent's parent process and its workers (node:cluster IPC).
import type { SecondDelta } from './stats.ts';
import type { Mode, QpsChange, Rule } from '../common/schedule.ts';

export interface WorkerInit {
  t: 'init';
  index: number;
  server: string;
  /** Users of this worker: ids first .. first+count-1. */
  first: number;
  count: number;
  /** Agent-local index of `first` (round-robin over source IPs continues across workers). */
  localBase: number;
  sourceIps: string[];
  /** The host's ephemeral port range: with source IPs, each user binds an explicit port from it. */
  portLow: number;
  portHigh: number;
  totalUsers: number;
  rule: Rule;
  mode: Mode;
  spreadMs: number;
  spreadStepMs: number;
  /** New connections per second for this worker. */
  ramp: number;
  connectTimeoutMs: number;
  /** Client implementation (--ws-impl): lite when absent (the default), or the ws package. */
  wsImpl?: 'ws' | 'lite';
  /** A notice answers the oldest unanswered shake (the original server's behaviour). */
  noticeAnswersShake?: boolean;
  skewMs: number;
  offsetMs: number;
  changes: QpsChange[];
  /** A restarted worker: the first second it accounts (its predecessor's unreported seconds before it are the parent's to count missed). */
  resumeAt?: number;
}

/** Parent -> worker. */
export type ToWorker = WorkerInit | { t: 'offset'; offsetMs: number } | { t: 'qps'; changes: QpsChange[] } | { t: 'stop' };

/** Connection-phase counters of one worker (cumulative except the gauges). */
export interface ConnReport {
  /** Gauges: logged in now, attempts in flight (connect to login reply), their window, waiting for (re)try. */
  connected: number;
  connecting: number;
  window: number;
  waiting: number;
  /** Cumulative: successful logins, failed attempts. */
  logins: number;
  failures: number;
  /** Cumulative failed attempts per source IP (index into the agent's list; -1 slot = default address). */
  ipErrors: number[];
  lastError: string;
  /** Memory of the worker process in bytes (resident set, V8 heap in use). */
  rss: number;
  heapUsed: number;
}

/** Worker -> parent: per-second deltas (counters in REC_FIELDS order, encoded histogram). */
export type ToParent = { t: 'ready' } | { t: 'sec'; recs: SecondDelta[]; conn: ConnReport; /** Every shake of seconds <= upTo is sent or counted missed. */ upTo: number };
