// IPC messages between the bench (parent) and its load-client processes.

/** A stretch of epoch seconds [from, to) during which the fleet sends `qps` shakes per second. */
export interface Phase {
  qps: number;
  from: number;
  to: number;
}

export interface ConnectMsg {
  t: 'connect';
  url: string;
  /** This process's users: ids first .. first+count-1. */
  first: number;
  count: number;
  /** Users of the whole fleet (N of the schedule rule). */
  totalUsers: number;
  /** Source addresses; user u connects from sourceIps[u % length]. */
  sourceIps: string[];
  /** Connection attempts in flight at once. */
  maxInFlight: number;
  /** Attempts per user before it counts as failed. */
  tries: number;
}

export interface RunMsg {
  t: 'run';
  phases: Phase[];
}

export type ToClient = ConnectMsg | RunMsg | { t: 'report' } | { t: 'exit' };

export interface ReadyMsg {
  t: 'ready';
  loggedIn: number;
  failed: number;
  retries: number;
  errors: number;
  ms: number;
}

/** Client-side counts of one epoch second. Sends are keyed by scheduled second, replies by the second in the reply header. */
export interface ClientSecond {
  second: number;
  sent: number;
  /** Scheduled but not sent: the timer ran past the second, or the user's connection was down. */
  missed: number;
  won: number;
  empty: number;
  overload: number;
}

export interface ReportMsg {
  t: 'report';
  pid: number;
  seconds: ClientSecond[];
  totals: { sent: number; missed: number; won: number; empty: number; overload: number; errorFrames: number; badFrames: number; closed: number };
  /** CPU of this load process (process.cpuUsage) over the run, microseconds. */
  cpuUs: number;
  /** Latest timer lateness seen, ms (how far behind schedule the batches went). */
  maxLateMs: number;
}

/** Sent every second while connecting. */
export interface ProgressMsg {
  t: 'progress';
  /** WebSocket handshakes completed (login sent). */
  opened: number;
  loggedIn: number;
  failed: number;
  retries: number;
}

export type FromClient = ReadyMsg | ReportMsg | ProgressMsg | { t: 'fatal'; message: string };
