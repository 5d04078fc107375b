// The parent side of the load generator: forks load-client processes (each holding a contiguous
// share of the users, well below the 20000-fd limit), waits until all users are logged in, hands
// them the schedule and collects their reports.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { share } from '../common/split.ts';
import { stop, track } from './children.ts';
import type { FromClient, Phase, ProgressMsg, ReadyMsg, ReportMsg, ToClient } from './load-protocol.ts';

const CLIENT = fileURLToPath(new URL('./load-client.ts', import.meta.url));
/** Sockets per load process: the hard fd limit is 20000, keep well below it. */
export const MAX_USERS_PER_PROCESS = 15000;

export interface FleetOptions {
  url: string;
  users: number;
  processes: number;
  sourceIps: string[];
  maxInFlight?: number;
  tries?: number;
  /** Whole connect phase, and longest stretch without a single new login. */
  connectTimeoutMs?: number;
  stallMs?: number;
  log?: (line: string) => void;
}

export interface FleetReady {
  loggedIn: number;
  failed: number;
  retries: number;
  errors: number;
  /** Slowest process's time to connect and log in all its users. */
  ms: number;
}

interface Client {
  child: ChildProcess;
  pid: number;
  inbox: FromClient[];
  progress: ProgressMsg;
  waiter?: () => void;
}

function checkLoopback(url: string, ips: readonly string[]): void {
  const host = new URL(url).hostname;
  for (const addr of [host, ...ips]) {
    if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(addr)) throw new Error(`bench only targets 127.0.0.x: refusing ${addr}`);
  }
}

export class LoadFleet {
  private constructor(private readonly clients: Client[]) {}

  get pids(): number[] {
    return this.clients.map((c) => c.pid);
  }

  /** Forks the processes and connects + logs in every user; rejects when that does not finish in time. */
  static async start(opts: FleetOptions): Promise<{ fleet: LoadFleet; ready: FleetReady }> {
    checkLoopback(opts.url, opts.sourceIps);
    if (Math.ceil(opts.users / opts.processes) > MAX_USERS_PER_PROCESS) {
      throw new Error(`${opts.users} users over ${opts.processes} processes is over ${MAX_USERS_PER_PROCESS} sockets per process`);
    }
    const clients: Client[] = [];
    const fleet = new LoadFleet(clients);
    let first = 0;
    try {
      for (let i = 0; i < opts.processes; i++) {
        const count = share(opts.users, opts.processes, i);
        const client = spawnClient();
        clients.push(client);
        client.child.send({
          t: 'connect',
          url: opts.url,
          first,
          count,
          totalUsers: opts.users,
          sourceIps: opts.sourceIps,
          maxInFlight: opts.maxInFlight ?? 256,
          tries: opts.tries ?? 3,
        } satisfies ToClient);
        first += count;
      }
      const readies = await fleet.whileConnecting(
        Promise.all(clients.map((c) => fleet.expect<ReadyMsg>(c, 'ready', opts.connectTimeoutMs ?? 60_000))),
        opts.users,
        opts.stallMs ?? 15_000,
        opts.log,
      );
      const ready: FleetReady = { loggedIn: 0, failed: 0, retries: 0, errors: 0, ms: 0 };
      for (const r of readies) {
        ready.loggedIn += r.loggedIn;
        ready.failed += r.failed;
        ready.retries += r.retries;
        ready.errors += r.errors;
        ready.ms = Math.max(ready.ms, r.ms);
      }
      return { fleet, ready };
    } catch (err) {
      await fleet.stop();
      throw err;
    }
  }

  /** Logs progress every 2 s while `ready` is pending; rejects when no user got further for `stallMs`. */
  private async whileConnecting<T>(ready: Promise<T>, users: number, stallMs: number, log?: (line: string) => void): Promise<T> {
    ready.catch(() => undefined); // when the stall wins, a later rejection of `ready` is expected
    let timer: NodeJS.Timeout | undefined;
    let last = -1;
    let lastChange = Date.now();
    const t0 = Date.now();
    const stalled = new Promise<never>((_, reject) => {
      timer = setInterval(() => {
        let done = 0;
        let retries = 0;
        let opened = 0;
        for (const c of this.clients) {
          done += c.progress.loggedIn + c.progress.failed;
          retries += c.progress.retries;
          opened += c.progress.opened;
        }
        if (done !== last) {
          last = done;
          lastChange = Date.now();
        } else if (Date.now() - lastChange > stallMs) {
          reject(new Error(`connecting stalled at ${done} of ${users} users for ${stallMs} ms (${opened} handshakes done)`));
        }
        log?.(`  connecting: ${done} of ${users} users after ${((Date.now() - t0) / 1000).toFixed(0)} s (${opened} handshakes, ${retries} retries)`);
      }, 2000);
    });
    try {
      return await Promise.race([ready, stalled]);
    } finally {
      clearInterval(timer);
    }
  }

  /** Hands every process the schedule. */
  run(phases: Phase[]): void {
    for (const c of this.clients) c.child.send({ t: 'run', phases } satisfies ToClient);
  }

  async report(timeoutMs = 10_000): Promise<ReportMsg[]> {
    for (const c of this.clients) c.child.send({ t: 'report' } satisfies ToClient);
    return Promise.all(this.clients.map((c) => this.expect<ReportMsg>(c, 'report', timeoutMs)));
  }

  async stop(): Promise<void> {
    for (const c of this.clients) if (c.child.connected) c.child.send({ t: 'exit' } satisfies ToClient);
    await stop(this.pids, 3000);
  }

  private expect<T extends FromClient>(c: Client, type: T['t'], timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        c.waiter = undefined;
        reject(new Error(`load client ${c.pid}: no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = () => {
        const i = c.inbox.findIndex((m) => m.t === type || m.t === 'fatal');
        if (i < 0) {
          if (c.child.exitCode !== null || c.child.signalCode !== null) {
            clearTimeout(timer);
            reject(new Error(`load client ${c.pid} exited (${c.child.signalCode ?? c.child.exitCode}) before '${type}'`));
          } else c.waiter = check;
          return;
        }
        const msg = c.inbox.splice(i, 1)[0];
        clearTimeout(timer);
        c.waiter = undefined;
        if (msg.t === 'fatal') reject(new Error(`load client ${c.pid} failed: ${msg.message}`));
        else resolve(msg as T);
      };
      check();
    });
  }
}

function spawnClient(): Client {
  const child = fork(CLIENT, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const client: Client = { child, pid: child.pid ?? 0, inbox: [], progress: { t: 'progress', opened: 0, loggedIn: 0, failed: 0, retries: 0 } };
  track(client.pid, 'load-client', exited);
  child.on('message', (msg: FromClient) => {
    if (msg.t === 'progress') {
      client.progress = msg;
      return;
    }
    client.inbox.push(msg);
    client.waiter?.();
  });
  child.once('exit', () => client.waiter?.());
  return client;
}
