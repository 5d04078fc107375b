// The worker processes of the agent and of the stub (node:cluster): forks one per index, nices
// them below the primary, tells the owner what they say, reports a death and replaces the worker
// after a short delay, and stops them all (a message or SIGTERM, then SIGKILL for what is left).
import cluster, { type Worker } from 'node:cluster';
import { yieldToPrimary } from './limits.ts';

export interface SupervisorHooks<FromWorker> {
  /** Environment variables of worker `index`'s process (it finds its role in them). */
  env(index: number): Record<string, string>;
  /** A message from worker `index`, with the native handle that came along (if any). */
  message(index: number, msg: FromWorker, handle: unknown): void;
  /** Worker `index`'s process is running (it can be sent its first message). */
  online?(index: number, worker: Worker): void;
  /** Worker `index` died while not stopping (code or signal in `how`); it is forked again after the restart delay. */
  died?(index: number, worker: Worker, how: string): void;
}

export class WorkerSupervisor<FromWorker, ToWorker> {
  private readonly byIndex: Array<Worker | undefined>;
  /** Times each worker was replaced. */
  readonly restarts: number[];
  private stopping = false;

  constructor(
    readonly count: number,
    private readonly hooks: SupervisorHooks<FromWorker>,
    private readonly restartDelayMs = 500,
  ) {
    this.byIndex = new Array<Worker | undefined>(count).fill(undefined);
    this.restarts = new Array<number>(count).fill(0);
  }

  /** Forks every worker; returns them in index order. */
  start(): Worker[] {
    return Array.from({ length: this.count }, (_, i) => this.fork(i));
  }

  private fork(index: number): Worker {
    const w = cluster.fork(this.hooks.env(index));
    this.byIndex[index] = w;
    yieldToPrimary(w.process.pid);
    w.on('message', (msg: FromWorker, handle?: unknown) => this.hooks.message(index, msg, handle));
    if (this.hooks.online) w.on('online', () => this.hooks.online!(index, w));
    w.on('exit', (code, signal) => {
      if (this.byIndex[index] === w) this.byIndex[index] = undefined;
      if (this.stopping) return;
      this.restarts[index]++;
      this.hooks.died?.(index, w, signal ?? `exit ${code}`);
      setTimeout(() => !this.stopping && this.fork(index), this.restartDelayMs);
    });
    return w;
  }

  /** The live worker at `index`, if any. */
  worker(index: number): Worker | undefined {
    const w = this.byIndex[index];
    return w && !w.isDead() ? w : undefined;
  }

  pid(index: number): number {
    return this.byIndex[index]?.process.pid ?? 0;
  }

  pids(): number[] {
    return this.byIndex.map((w) => w?.process.pid ?? 0);
  }

  /** Sends `msg` to worker `index` when its channel is open; false when it could not. */
  send(index: number, msg: ToWorker, handle?: unknown, done?: () => void): boolean {
    const w = this.byIndex[index];
    if (!w || !w.isConnected()) return false;
    w.send(msg as never, handle as never, undefined, done);
    return true;
  }

  broadcast(msg: ToWorker): void {
    for (let i = 0; i < this.count; i++) this.send(i, msg);
  }

  /**
   * Stops every worker: sends `msg` (or SIGTERM when none), waits up to `graceMs` for them to exit,
   * then SIGKILLs what is left. No worker is restarted from here on.
   */
  async stop(msg: ToWorker | undefined, graceMs: number): Promise<void> {
    this.stopping = true;
    const live = this.byIndex.filter((w): w is Worker => !!w && !w.isDead());
    const exits = live.map((w) => new Promise((r) => (w.isDead() ? r(null) : w.once('exit', r))));
    for (const w of live) {
      if (msg !== undefined && w.isConnected()) w.send(msg as never);
      else w.process.kill('SIGTERM');
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(exits), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    for (const w of live) if (!w.isDead()) w.process.kill('SIGKILL');
  }

  /** Stops at once without waiting (a start that failed). */
  abort(): void {
    this.stopping = true;
    for (const w of this.byIndex) if (w && !w.isDead()) w.process.kill();
  }
}
