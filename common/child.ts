// Starts `hongbao <command>` child processes, reads their JSON event lines from stdout, and ends
// them by PID (only the ones started here). Used by the demo, the bench and the tests.
import { spawn, type ChildProcess } from 'node:child_process';

export interface ChildEvent {
  event: string;
  [key: string]: unknown;
}

export class CliProcess<Ready extends { event: string } = ChildEvent> {
  readonly child: ChildProcess;
  readonly events: ChildEvent[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private out = '';
  private all = '';
  private err = '';
  private readonly waiters: Array<{ event: string; resolve: (e: ChildEvent) => void; reject: (e: Error) => void }> = [];

  constructor(
    readonly name: string,
    self: readonly string[],
    args: readonly string[],
    env: NodeJS.ProcessEnv,
    /** Where stderr lines go (progress of the child), e.g. prefixed to the parent's stderr. */
    private readonly onStderr?: (line: string) => void,
  ) {
    this.child = spawn(self[0], [...self.slice(1), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => this.onOut(d));
    let partial = '';
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.err += d;
      if (this.err.length > 1_000_000) this.err = this.err.slice(-500_000);
      if (!this.onStderr) return;
      const lines = (partial + d).split('\n');
      partial = lines.pop()!;
      for (const l of lines) if (l) this.onStderr(l);
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        for (const w of this.waiters.splice(0)) w.reject(new Error(`${this.name} exited (${signal ?? code}) before "${w.event}": ${this.lastError()}`));
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Everything the child printed on stdout (the last MB). */
  stdout(): string {
    return this.all;
  }

  stderr(): string {
    return this.err;
  }

  /** The last non-empty stderr line: what a failing child said. */
  lastError(): string {
    return this.err.trim().split('\n').pop() ?? '';
  }

  private onOut(d: string): void {
    this.all += d;
    if (this.all.length > 1_000_000) this.all = this.all.slice(-500_000);
    this.out += d;
    const lines = this.out.split('\n');
    this.out = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      let e: ChildEvent;
      try {
        e = JSON.parse(line) as ChildEvent;
      } catch {
        continue;
      }
      this.events.push(e);
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        if (this.waiters[i].event === e.event) this.waiters.splice(i, 1)[0].resolve(e);
      }
    }
  }

  /** The first event named `event` (already seen or still to come), within `timeoutMs`. */
  waitEvent<T extends { event: string } = ChildEvent>(event: string, timeoutMs: number): Promise<T> {
    const seen = this.events.find((e) => e.event === event);
    if (seen) return Promise.resolve(seen as T);
    if (!this.running) return Promise.reject(new Error(`${this.name} is not running: ${this.lastError()}`));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`${this.name} sent no "${event}" within ${timeoutMs} ms; last stderr: ${this.lastError()}`));
      }, timeoutMs);
      const w = {
        event,
        resolve: (e: ChildEvent) => {
          clearTimeout(timer);
          resolve(e as T);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.push(w);
    });
  }

  ready(timeoutMs = 15000): Promise<Ready> {
    return this.waitEvent<Ready>('listening', timeoutMs);
  }

  /** `signal` (SIGTERM), then SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs = 5000, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) {
      this.child.kill(signal);
      const timer = setTimeout(() => this.running && this.child.kill('SIGKILL'), graceMs);
      const r = await this.exited;
      clearTimeout(timer);
      return r;
    }
    return this.exited;
  }
}
