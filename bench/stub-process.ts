// Starts `node dist/hongbao.cjs stub` on loopback, waits for its "listening" line, and talks to its
// HTTP API. The primary and its workers are tracked by PID and stopped by PID only.
import { CliProcess } from '../common/child.ts';
import { cliPath } from './cli.ts';
import { stop, track } from './children.ts';

export interface StubReady {
  event: 'listening';
  port: number;
  /** With --tcp-port. */
  tcpPort?: number;
  httpPort: number;
  host: string;
  pid: number;
  workers: number[];
}

export interface StubSecond {
  second: number;
  shakes: number;
  won: number;
  empty: number;
  overload: number;
  logins: number;
  errors: number;
  [field: string]: number;
}

export interface StubStats {
  now: number;
  connections: number;
  seconds: StubSecond[];
}

export class StubProcess {
  private constructor(
    readonly ready: StubReady,
    private readonly log: (line: string) => void,
  ) {}

  /** Primary first, then the workers. */
  get pids(): number[] {
    return [this.ready.pid, ...this.ready.workers];
  }

  get wsUrl(): string {
    return `ws://${this.ready.host}:${this.ready.port}`;
  }

  /** The raw-TCP URL (the stub was started with --tcp-port). */
  get tcpUrl(): string {
    if (!this.ready.tcpPort) throw new Error('the stub was started without --tcp-port');
    return `tcp://${this.ready.host}:${this.ready.tcpPort}`;
  }

  private get http(): string {
    return `http://${this.ready.host}:${this.ready.httpPort}`;
  }

  static async start(opts: { workers: number; maxQps: number; timeoutMs?: number; args?: string[] }, log: (line: string) => void): Promise<StubProcess> {
    const args = [cliPath(), 'stub', '--host', '127.0.0.1', '--port', '0', '--http-port', '0', '--workers', String(opts.workers), '--max-qps', String(opts.maxQps)];
    args.push(...(opts.args ?? []));
    // No HONGBAO_* settings from the caller's environment: the bench runs the stub with its defaults.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HONGBAO_')));
    const child = new CliProcess<StubReady>('stub', [process.execPath], args, env, (line) => log(`  [stub] ${line}`));
    track(child.pid, 'stub', child.exited);
    const ready = await child.ready(opts.timeoutMs ?? 15_000);
    for (const pid of ready.workers) track(pid, 'stub worker');
    if (!/^127\./.test(ready.host)) throw new Error(`stub listens on ${ready.host}, not loopback`);
    return new StubProcess(ready, log);
  }

  async stats(since: number): Promise<StubStats> {
    return (await this.get(`/stats?since=${since}`)) as StubStats;
  }

  /** Waits until /stats has every second up to `last` (completed seconds only), or the timeout. */
  async statsThrough(since: number, last: number, timeoutMs = 5000): Promise<StubStats> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.stats(since);
      const top = s.seconds.length ? s.seconds[s.seconds.length - 1].second : -1;
      if (top >= last || Date.now() > deadline) return s;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async health(): Promise<{ connections: number; workers: Array<{ index: number; connections: number; handedOver?: number; adopted?: number }> }> {
    return (await this.get('/health')) as never;
  }

  async audit(): Promise<unknown> {
    return this.get('/audit');
  }

  async generator(rate: number, total: number): Promise<unknown> {
    const res = await fetch(`${this.http}/generator`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rate, total }),
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) throw new Error(`POST /generator: HTTP ${res.status} ${await res.text()}`);
    return res.json();
  }

  private async get(path: string): Promise<unknown> {
    const res = await fetch(`${this.http}${path}`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok && !(path === '/health' && res.status === 503)) throw new Error(`GET ${path}: HTTP ${res.status} ${await res.text()}`);
    return res.json();
  }

  async stop(): Promise<void> {
    // The primary stops its workers; any worker still alive after the grace period gets SIGKILL.
    await stop([this.ready.pid], 5000);
    await stop(this.ready.workers, 1000);
  }
}
