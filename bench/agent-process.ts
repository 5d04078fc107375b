// Starts `node dist/hongbao.cjs agent` on loopback (control endpoint on 127.0.0.1, a free port, no
// NTP), follows its stdout events ("listening" with the parent and worker pids, "connected" once every
// user has logged in) and talks to its control endpoint. The parent and its workers are tracked by
// PID and stopped by PID only.
import type { AGENT_SECOND_FIELDS } from '../common/fields.ts';
import { CliProcess } from '../common/child.ts';
import { cliPath } from './cli.ts';
import { stop, track } from './children.ts';


export interface AgentOptions {
  server: string;
  first: number;
  count: number;
  totalUsers: number;
  workers: number;
  sourceIps: string[];
  qps?: number;
  mode?: 'spread' | 'burst';
  rule?: 'window' | 'modulo';
  /** New connections per second of the whole agent (the agent's default is 4000). */
  ramp?: number;
  /** Whole connect phase, from the spawn to the "connected" event. */
  connectTimeoutMs?: number;
}

export interface AgentListening {
  event: 'listening';
  id: string;
  controlPort: number;
  controlUrl: string;
  pid: number;
  workers: number[];
}

export interface AgentConnected {
  event: 'connected';
  id: string;
  connected: number;
  failures: number;
  seconds: number;
}

/** One second of the agent's GET /stats (common/fields.ts lists the counters). */
export type AgentSecond = { second: number } & { [K in (typeof AGENT_SECOND_FIELDS)[number]]: number } & {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** p99 of actual send - scheduled send in that second. */
  lateP99Ms: number;
};

export interface AgentStats {
  id: string;
  connections: number;
  qps: number;
  offsetMs: number;
  seconds: AgentSecond[];
}

function checkLoopback(url: string, ips: readonly string[]): void {
  const host = new URL(url).hostname;
  for (const addr of [host, ...ips]) {
    if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(addr)) throw new Error(`bench only targets 127.0.0.x: refusing ${addr}`);
  }
}

export class AgentProcess {
  private constructor(
    readonly listening: AgentListening,
    /** performance.now() when the process was spawned. */
    readonly spawnedAt: number,
    readonly connected: Promise<AgentConnected>,
    private readonly stderrTail: () => string,
  ) {}

  /** Parent first, then the workers. */
  get pids(): number[] {
    return [this.listening.pid, ...this.listening.workers];
  }

  get workerPids(): number[] {
    return this.listening.workers;
  }

  private get http(): string {
    return `http://127.0.0.1:${this.listening.controlPort}`;
  }

  /** Spawns the agent and resolves once its control endpoint listens (connecting is under way by then). */
  static async start(o: AgentOptions, log: (line: string) => void, tag = 'agent'): Promise<AgentProcess> {
    checkLoopback(o.server, o.sourceIps);
    const args = [
      cliPath(),
      'agent',
      '--server',
      o.server,
      '--users',
      `${o.first}:${o.count}`,
      '--total-users',
      String(o.totalUsers),
      '--workers',
      String(o.workers),
      '--control-port',
      '0',
      '--control-host',
      '127.0.0.1',
      '--ntp',
      'off',
      '--qps',
      String(o.qps ?? 0),
      '--mode',
      o.mode ?? 'spread',
      '--rule',
      o.rule ?? 'window',
      '--id',
      `bench-${tag}`,
    ];
    if (o.ramp !== undefined) args.push('--ramp', String(o.ramp));
    for (const ip of o.sourceIps) args.push('--source-ip', ip);
    // No HONGBAO_* settings from the caller's environment: the bench runs the agent with its defaults.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HONGBAO_')));
    const spawnedAt = performance.now();
    // Progress lines are one a second while connecting: keep them out of the bench log.
    const child = new CliProcess<AgentListening>(`agent ${tag}`, [process.execPath], args, env, (line) => /connected \d+\/\d+ \(/.test(line) || log(`  [${tag}] ${line}`));
    track(child.pid, `agent ${tag}`, child.exited);
    const connected = child.waitEvent<AgentConnected>('connected', o.connectTimeoutMs ?? 120_000);
    connected.catch(() => undefined); // observed by the caller when it awaits it
    const ready = await child.ready(20_000);
    for (const pid of ready.workers) track(pid, `agent ${tag} worker`);
    return new AgentProcess(ready, spawnedAt, connected, () => child.stderr().slice(-4000));
  }

  get stderr(): string {
    return this.stderrTail();
  }

  async stats(since: number): Promise<AgentStats> {
    return (await this.get(`/stats?since=${since}`)) as AgentStats;
  }

  async health(): Promise<Record<string, unknown>> {
    return (await this.get('/health', true)) as Record<string, unknown>;
  }

  async metrics(): Promise<string> {
    const res = await fetch(`${this.http}/metrics`, { signal: AbortSignal.timeout(5000) });
    return res.text();
  }

  /** Schedules `qps` from epoch second `at` (changes must be posted in time order). */
  async setQps(qps: number, at: number): Promise<unknown> {
    const res = await fetch(`${this.http}/qps`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ qps, at }),
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) throw new Error(`POST /qps: HTTP ${res.status} ${await res.text()}`);
    return res.json();
  }

  private async get(path: string, any = false): Promise<unknown> {
    const res = await fetch(`${this.http}${path}`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok && !any) throw new Error(`GET ${path}: HTTP ${res.status} ${await res.text()}`);
    return res.json();
  }

  async stop(): Promise<void> {
    // The parent stops its workers (within 3 s); any worker still alive after that gets SIGKILL.
    await stop([this.listening.pid], 5000);
    await stop(this.listening.workers, 1000);
  }
}
