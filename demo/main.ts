// `hongbao demo`: the whole experiment on one machine, as child processes of this one (the
// programs are never imported, only started): stub -> controller (+ SNTP) -> agents; connect
// everyone; generator and sending service on; QPS steps through the controller; stop the run;
// print the summary table and the chart paths. Ctrl-C stops every child and still writes the charts.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../common/errors.ts';
import { autobindReserve } from '../common/limits.ts';
import type { Io } from '../common/io.ts';
import { helpText, parseOptions } from '../common/options.ts';
import { share } from '../common/split.ts';
import { demoCommand, scaleOf, type DemoOptions, type Scale } from './options.ts';
import { CliProcess, type ChildEvent } from '../common/child.ts';
import { sleep } from '../common/wait.ts';
import { availableKiB, formatSide, sideMemory } from './memory.ts';
import { formatTable, type PhaseLike } from './table.ts';

const PORT_RANGE = '/proc/sys/net/ipv4/ip_local_port_range';

/** Ephemeral ports per source IP an agent may bind (the range less the host's reserve), or null when unknown. */
function ephemeralPorts(): number | null {
  try {
    const [portLow, portHigh] = readFileSync(PORT_RANGE, 'utf8').trim().split(/\s+/).map(Number);
    return portHigh - portLow + 1 - autobindReserve({ portLow, portHigh });
  } catch {
    return null;
  }
}

interface Http {
  call<T = Record<string, unknown>>(method: 'GET' | 'POST', url: string, body?: unknown): Promise<T>;
}

function http(token: string): Http {
  return {
    async call<T>(method: 'GET' | 'POST', url: string, body?: unknown): Promise<T> {
      let res: Response;
      try {
        res = await fetch(url, {
          method,
          headers: method === 'POST' ? { 'content-type': 'application/json', authorization: `Bearer ${token}` } : {},
          body: method === 'POST' ? JSON.stringify(body ?? {}) : undefined,
          signal: AbortSignal.timeout(30_000),
        });
      } catch (err) {
        const cause = (err as Error & { cause?: Error }).cause;
        throw new Error(`${method} ${url}: ${(err as Error).message}${cause ? ` (${cause.message})` : ''}`);
      }
      const json = (await res.json()) as T & { message?: string };
      if (!res.ok) throw new Error(`${method} ${url} answered ${res.status}: ${json.message ?? JSON.stringify(json)}`);
      return json;
    },
  };
}


/** An agent's per-second connect progress line (the demo prints a fleet-wide one instead). */
const AGENT_PROGRESS = /^hongbao agent: connected \d+\/\d+ /;

interface AgentHealth {
  connections: number;
  workers: Array<{ connecting?: number; window?: number; failures?: number }>;
}

/** One agent's /health, undefined when it does not answer within 2 s. */
async function agentHealth(controlUrl: string): Promise<AgentHealth | undefined> {
  try {
    return (await (await fetch(`${controlUrl}/health`, { signal: AbortSignal.timeout(2000) })).json()) as AgentHealth;
  } catch {
    return undefined;
  }
}

/** Logged-in connections of one agent, 0 when it does not answer. */
async function agentConnections(controlUrl: string): Promise<number> {
  return (await agentHealth(controlUrl))?.connections ?? 0;
}

/** The fleet's connect phase on one line every few seconds: logged in, rate, in flight, failures, ETA. */
class ConnectProgress {
  private readonly t0 = Date.now();
  private last = { at: Date.now(), connected: 0 };
  private nextAt = Date.now() + PROGRESS_EVERY_MS;

  constructor(
    private readonly users: number,
    /** Control URLs of the agents started so far (grows while they start). */
    private readonly agents: string[],
    private readonly log: (line: string) => void,
  ) {}

  private async health(): Promise<AgentHealth[]> {
    const got = await Promise.all(this.agents.map(agentHealth));
    return got.filter((h): h is AgentHealth => !!h);
  }

  async failures(): Promise<number> {
    return (await this.health()).reduce((n, h) => n + h.workers.reduce((m, w) => m + (w.failures ?? 0), 0), 0);
  }

  async maybeReport(): Promise<void> {
    const now = Date.now();
    if (now < this.nextAt) return;
    this.nextAt = now + PROGRESS_EVERY_MS;
    const hs = await this.health();
    let connected = 0;
    let inFlight = 0;
    let window = 0;
    let failed = 0;
    for (const h of hs) {
      connected += h.connections;
      for (const w of h.workers) {
        inFlight += w.connecting ?? 0;
        window += w.window ?? 0;
        failed += w.failures ?? 0;
      }
    }
    const rate = ((connected - this.last.connected) * 1000) / Math.max(1, now - this.last.at);
    this.last = { at: now, connected };
    const left = this.users - connected;
    const eta = rate > 0 ? `ETA ${formatDuration(left / rate)}` : 'ETA unknown';
    const unreachable = hs.length < this.agents.length ? `, ${this.agents.length - hs.length} of ${this.agents.length} agents not answering` : '';
    this.log(
      `connect: ${connected}/${this.users} logged in (+${Math.round(rate)}/s) after ${Math.round((now - this.t0) / 1000)} s, ` +
        `${inFlight} handshakes in flight (window ${window}), ${failed} failed, ${eta}${unreachable}`,
    );
  }
}

const PROGRESS_EVERY_MS = 5000;

function formatDuration(s: number): string {
  return s >= 90 ? `${Math.round(s / 60)} min` : `${Math.ceil(s)} s`;
}

export async function runDemo(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { options: o, help } = parseOptions<DemoOptions>(demoCommand, argv, env);
  if (help) {
    io.stdout(helpText(demoCommand));
    return 0;
  }
  if (!io.self) throw new Error('hongbao demo needs to know how to start hongbao (io.self)');
  const scale = scaleOf(o);
  const perIp = Math.ceil(scale.users / scale.sourceIps.length);
  const ports = ephemeralPorts();
  if (ports !== null && perIp > ports) {
    throw new ConfigError(
      `hongbao demo: --scale ${o.scale} opens ${perIp} connections per source IP but ${PORT_RANGE} offers ${ports} ports to bind (the lowest are left to other connections): run "sysctl -w net.ipv4.ip_local_port_range='1024 65535'" as root first`,
    );
  }
  return new Demo(o, scale, argv, env, io).run();
}

/**
 * What the demo's children get: the demo's environment without any HONGBAO_* variable (the user's
 * settings for the demo are the demo's; what its children need, it gives them as flags) and the run's
 * token as HONGBAO_TOKEN.
 */
export function childEnv(env: NodeJS.ProcessEnv, token: string): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!k.startsWith('HONGBAO_')) out[k] = v;
  out.HONGBAO_TOKEN = token;
  return out;
}

class Demo {
  private readonly token = randomBytes(16).toString('hex');
  private readonly api: Http;
  private readonly childEnv: NodeJS.ProcessEnv;
  private readonly procs: CliProcess[] = [];
  private stub?: CliProcess;
  private controller?: CliProcess;
  private agents: CliProcess[] = [];
  private interrupted = false;
  private stopped: ChildEvent | undefined;

  constructor(
    private readonly o: DemoOptions,
    private readonly scale: Scale,
    private readonly argv: readonly string[],
    env: NodeJS.ProcessEnv,
    private readonly io: Io,
  ) {
    this.api = http(this.token);
    this.childEnv = childEnv(env, this.token);
  }

  private log(line: string): void {
    this.io.stderr(`demo: ${line}`);
  }

  private start(name: string, args: string[], quiet?: RegExp): CliProcess {
    const p = new CliProcess(name, this.io.self!, args, this.childEnv, (l) => quiet?.test(l) || this.io.stderr(`  [${name}] ${l}`));
    this.procs.push(p);
    this.io.stdout(JSON.stringify({ event: 'started', name, pid: p.pid }));
    return p;
  }

  async run(): Promise<number> {
    const onSignal = () => {
      if (this.interrupted) return;
      this.interrupted = true;
      this.log('interrupted: stopping the fleet and writing what was recorded');
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let code = 0;
    let stopped: ChildEvent | undefined;
    try {
      await this.experiment();
    } catch (err) {
      if (!this.interrupted) {
        this.io.stderr(`demo: failed: ${(err as Error).message}`);
        code = 1;
      }
    } finally {
      stopped = await this.shutdown();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    if (stopped) this.report(stopped);
    else if (code === 0) code = 1;
    return this.interrupted ? 130 : code;
  }

  /**
   * Memory of both sides once everyone is logged in (PSS per connection, see memory.ts), logged and
   * returned for the `connected` event; null where /proc or a /health does not tell.
   */
  private async memory(stubHttp: string, controlUrls: string[]) {
    try {
      type Health = { pid: number; connections: number; workers: Array<{ pid: number }> };
      const stub = await this.api.call<Health>('GET', `${stubHttp}/health`);
      const agents = await Promise.all(controlUrls.map((u) => this.api.call<Health>('GET', `${u}/health`)));
      const pids = (h: Health) => [h.pid, ...h.workers.map((w) => w.pid)];
      const server = sideMemory(pids(stub), stub.connections);
      const client = sideMemory(agents.flatMap(pids), agents.reduce((n, h) => n + h.connections, 0));
      const available = availableKiB();
      const availableGiB = available === null ? null : Math.round((available / 1024 / 1024) * 100) / 100;
      if (server && client) this.log(`memory: ${formatSide('stub', server)}; ${formatSide('agents', client)}; machine has ${availableGiB ?? '?'} GiB available`);
      return { stub: server, agents: client, availableGiB };
    } catch (err) {
      this.log(`memory: not measured (${(err as Error).message})`);
      return null;
    }
  }

  private check(): void {
    if (this.interrupted) throw new Error('interrupted');
    for (const p of this.procs) if (!p.running) throw new Error(`${p.name} (pid ${p.pid}) died: ${p.lastError()}`);
  }

  private async wait(ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      this.check();
      await sleep(Math.min(250, end - Date.now()));
    }
  }

  /** Awaits `p` while checking every child and printing the connect progress. */
  private async until<T>(p: Promise<T>, progress: ConnectProgress): Promise<T> {
    p.catch(() => undefined);
    for (;;) {
      const done = await Promise.race([p.then(() => true), sleep(500).then(() => false)]);
      if (done) return p;
      this.check();
      await progress.maybeReport();
    }
  }

  private async experiment(): Promise<void> {
    const { scale, o } = this;
    const results = resolve(o.results);
    this.log(
      `${scale.users} users on ${scale.agents} agents${scale.agentWorkers ? ` x ${scale.agentWorkers} workers` : ''} from ${scale.sourceIps.length} source IPs, ` +
        `a stub with ${scale.stubWorkers} workers; phases ${scale.phases.map((p) => `${p.qps} QPS x ${p.seconds} s`).join(', ')}`,
    );

    this.stub = this.start('stub', ['stub', '--port', '0', '--http-port', '0', '--workers', String(scale.stubWorkers), '--sets', String(scale.sets), ...(o.transport === 'tcp' ? ['--tcp-port', '0'] : [])]);
    // Every process is up before the first connection: starting ~150 Node processes takes the
    // machine's CPU for a while, and a ramp that ran meanwhile would only queue handshakes.
    const stub = (await this.stub.ready(60_000 + scale.stubWorkers * 1000)) as ChildEvent & { port: number; tcpPort?: number; httpPort: number };
    const server = o.transport === 'tcp' ? `tcp://127.0.0.1:${stub.tcpPort}` : `ws://127.0.0.1:${stub.port}`;
    const stubHttp = `http://127.0.0.1:${stub.httpPort}`;

    const note = `hongbao demo ${this.argv.join(' ')}`.trim() + `: ${scale.users} users on ${scale.agents} agents, stub with ${scale.stubWorkers} workers, ${o.transport}`;
    this.controller = this.start('controller', ['controller', '--port', '0', '--stub', stubHttp, '--results', results, '--ntp-serve', '0', '--lead', String(scale.leadSeconds), '--note', note]);
    const ctl = (await this.controller.ready(30_000)) as ChildEvent & { port: number; ntpPort: number; run: string; runDir: string };
    const ctlUrl = `http://127.0.0.1:${ctl.port}`;
    this.log(`controller ${ctlUrl}/ (open it for the live dashboard), run ${ctl.run}`);

    // Agents log in one after another, as VMs brought up in turn would: the next starts when the
    // previous one has 90 % of its users in. On one machine this keeps few processes connecting at
    // once: each connection then costs several times less CPU than with every agent worker and
    // stub worker waking each other (context switches, cold caches), so the whole is faster.
    const controlUrls: string[] = [];
    const progress = new ConnectProgress(scale.users, controlUrls, (line) => this.log(line));
    const deadline = Date.now() + scale.connectTimeoutS * 1000;
    const connectStart = Date.now();
    let first = 0;
    for (let i = 0; i < scale.agents; i++) {
      const count = share(scale.users, scale.agents, i);
      const ips = scale.sourceIps.filter((_, k) => k % scale.agents === i);
      const id = `agent-${String(i + 1).padStart(2, '0')}`;
      const args = ['agent', '--id', id, '--server', server, '--users', `${first}:${count}`];
      args.push('--total-users', String(scale.users), '--controller', ctlUrl, '--control-port', '0', '--ntp', `127.0.0.1:${ctl.ntpPort}`, '--qps', '0');
      args.push('--mode', o.mode, '--rule', o.rule, '--ramp', String(o.ramp), ...ips.flatMap((ip) => ['--source-ip', ip]));
      args.push('--connect-timeout', String(scale.handshakeTimeoutMs), '--spread-step', String(scale.spreadStepMs));
      if (scale.agentWorkers) args.push('--workers', String(scale.agentWorkers));
      // The agents' own per-second connect progress would be a line per agent per second: the demo sums it up.
      const agent = this.start(id, args, AGENT_PROGRESS);
      this.agents.push(agent);
      first += count;
      const ready = await this.until(agent.ready(60_000), progress);
      controlUrls.push(String(ready.controlUrl));
      if (i === scale.agents - 1) break;
      for (;;) {
        this.check();
        await progress.maybeReport();
        if ((await agentConnections(String(ready.controlUrl))) >= 0.9 * count) break;
        if (Date.now() > deadline) throw new Error(`${id} logged in fewer than 90 % of its ${count} users within --connect-timeout ${scale.connectTimeoutS} s`);
        await sleep(500);
      }
    }
    await this.until(Promise.all(this.agents.map((a) => a.waitEvent('connected', Math.max(1, deadline - Date.now())))), progress);
    this.log(`all ${scale.users} users logged in after ${((Date.now() - connectStart) / 1000).toFixed(1)} s (${await progress.failures()} failed attempts retried)`);
    const memory = await this.memory(stubHttp, controlUrls);
    this.io.stdout(JSON.stringify({ event: 'connected', users: scale.users, seconds: Math.round((Date.now() - connectStart) / 100) / 10, memory }));

    if (o.generatorRate > 0) {
      await this.api.call('POST', `${stubHttp}/generator`, { rate: o.generatorRate, total: o.generatorRate * 3600 });
    }
    if (o.senderRate > 0) {
      await this.api.call('POST', `${stubHttp}/sender`, { rate: o.senderRate, total: o.senderRate * 3600, users: 3, minUser: 0, maxUser: scale.users - 1, amount: 1000 });
    }
    this.log(`generator ${o.generatorRate} envelopes/s and sending service ${o.senderRate} envelopes/s (3 users each) on`);

    for (const [k, phase] of scale.phases.entries()) {
      const change = await this.setQps(ctlUrl, phase.qps);
      this.log(`phase ${k + 1}: ${phase.qps} QPS from second ${change.at} for ${phase.seconds} s`);
      this.io.stdout(JSON.stringify({ event: 'phase', phase: k + 1, qps: phase.qps, at: change.at, seconds: phase.seconds }));
      await this.wait(change.at * 1000 + phase.seconds * 1000 - Date.now());
    }
    // Back to zero, so the run's last phase ends where the experiment does; let the last seconds
    // settle (agents push second now-2), then close the run while everyone is still up.
    const end = await this.setQps(ctlUrl, 0);
    await this.wait(end.at * 1000 + 4000 - Date.now());
    this.log('closing the run: summary and charts');
    const stopped = await this.api.call<ChildEvent>('POST', `${ctlUrl}/runs/${ctl.run}/stop`, {});
    this.stopped = { ...stopped, event: 'stopped', run: stopped.id };
  }

  /**
   * Retargets the fleet through the controller. An agent too busy to answer before the switch (an
   * overloaded machine) makes the whole change again for a later second, up to 3 times: the agents
   * that took the first one keep it, and the seconds in between show in the run as missed.
   */
  private async setQps(ctlUrl: string, qps: number): Promise<{ at: number }> {
    for (let attempt = 1; ; attempt++) {
      const change = await this.api.call<{ at: number; agents: Array<{ id: string; ok: boolean; error?: string }> }>('POST', `${ctlUrl}/qps`, { qps });
      const failed = change.agents.filter((a) => !a.ok);
      if (!failed.length) return change;
      const why = failed.map((f) => `${f.id}: ${f.error}`).join('; ');
      if (attempt === 3) throw new Error(`agents refused QPS ${qps} 3 times, last: ${why}`);
      this.log(`QPS ${qps} from second ${change.at}: ${failed.length} agent(s) did not take it (${why}); asking the fleet again`);
    }
  }

  /** Stops the run (charts, summary) and every child, agents first; returns the controller's "stopped" event. */
  private async shutdown(): Promise<ChildEvent | undefined> {
    for (const a of this.agents) void a.stop();
    await Promise.all(this.agents.map((a) => a.exited));
    if (this.controller?.running && !this.stopped) this.log('closing the run: summary and charts');
    // On SIGTERM the controller closes a run still in progress (after Ctrl-C, or a failure).
    await this.controller?.stop(60_000);
    await this.stub?.stop();
    for (const p of this.procs) await p.stop();
    return this.stopped ?? this.controller?.events.find((e) => e.event === 'stopped');
  }

  private report(stopped: ChildEvent): void {
    const summary = stopped.summary as { phases: PhaseLike[]; totals: Record<string, number> };
    const table = formatTable(summary.phases);
    const charts = stopped.charts as string[];
    const report = String(stopped.report ?? join(String(stopped.dir), 'report.html'));
    const text = `${table}\ncharts:\n${charts.map((c) => `  ${c}`).join('\n')}\nreport (one file, opens in any browser, no network needed):\n  ${pathToFileURL(report).href}\n`;
    writeFileSync(join(String(stopped.dir), 'summary.txt'), text);
    this.io.stderr(`\nrun ${stopped.run} in ${stopped.dir}\n${text}`);
    this.io.stdout(JSON.stringify({ event: 'demo', run: stopped.run, dir: stopped.dir, charts, report, summary }));
  }
}
