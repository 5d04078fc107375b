// `hongbao demo`: the whole experiment on one machine, as child processes of this one (the
// programs are never imported, only started): stub -> controller (+ SNTP) -> agents; connect
// everyone; generator and sending service on; QPS steps through the controller; stop the run;
// print the summary table and the chart paths. Ctrl-C stops every child and still writes the charts.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from '../common/errors.ts';
import type { Io } from '../common/io.ts';
import { helpText, parseOptions } from '../common/options.ts';
import { share } from '../common/split.ts';
import { demoCommand, scaleOf, type DemoOptions, type Scale } from './options.ts';
import { CliProcess, type ChildEvent } from './processes.ts';
import { formatTable, type PhaseLike } from './table.ts';

const PORT_RANGE = '/proc/sys/net/ipv4/ip_local_port_range';

/** Ephemeral ports per source IP the kernel offers, or null when unknown. */
function ephemeralPorts(): number | null {
  try {
    const [lo, hi] = readFileSync(PORT_RANGE, 'utf8').trim().split(/\s+/).map(Number);
    return hi - lo + 1;
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
      const res = await fetch(url, {
        method,
        headers: method === 'POST' ? { 'content-type': 'application/json', authorization: `Bearer ${token}` } : {},
        body: method === 'POST' ? JSON.stringify(body ?? {}) : undefined,
        signal: AbortSignal.timeout(30_000),
      });
      const json = (await res.json()) as T & { message?: string };
      if (!res.ok) throw new Error(`${method} ${url} answered ${res.status}: ${json.message ?? JSON.stringify(json)}`);
      return json;
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
      `hongbao demo: --scale ${o.scale} opens ${perIp} connections per source IP but ${PORT_RANGE} offers ${ports} ports: run "sysctl -w net.ipv4.ip_local_port_range='1024 65535'" as root first`,
    );
  }
  return new Demo(o, scale, env, io).run();
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
    env: NodeJS.ProcessEnv,
    private readonly io: Io,
  ) {
    this.api = http(this.token);
    this.childEnv = { ...env, HONGBAO_TOKEN: this.token };
  }

  private log(line: string): void {
    this.io.stderr(`demo: ${line}`);
  }

  private start(name: string, args: string[]): CliProcess {
    const p = new CliProcess(name, this.io.self!, args, this.childEnv, (l) => this.io.stderr(`  [${name}] ${l}`));
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

  private async experiment(): Promise<void> {
    const { scale, o } = this;
    const results = resolve(o.results);
    this.log(`${scale.users} users on ${scale.agents} agents from ${scale.sourceIps.length} source IPs, a stub with ${scale.stubWorkers} workers; phases ${scale.phases.map((p) => `${p.qps} QPS x ${p.seconds} s`).join(', ')}`);

    this.stub = this.start('stub', ['stub', '--port', '0', '--http-port', '0', '--workers', String(scale.stubWorkers)]);
    const stub = (await this.stub.ready(30_000)) as ChildEvent & { port: number; httpPort: number };
    const stubHttp = `http://127.0.0.1:${stub.httpPort}`;

    this.controller = this.start('controller', ['controller', '--port', '0', '--stub', stubHttp, '--results', results, '--ntp-serve', '0']);
    const ctl = (await this.controller.ready(30_000)) as ChildEvent & { port: number; ntpPort: number; run: string; runDir: string };
    const ctlUrl = `http://127.0.0.1:${ctl.port}`;
    this.log(`controller ${ctlUrl}/ (open it for the live dashboard), run ${ctl.run}`);

    let first = 0;
    for (let i = 0; i < scale.agents; i++) {
      const count = share(scale.users, scale.agents, i);
      const ips = scale.sourceIps.filter((_, k) => k % scale.agents === i);
      const args = ['agent', '--id', `agent-${String(i + 1).padStart(2, '0')}`, '--server', `ws://127.0.0.1:${stub.port}`, '--users', `${first}:${count}`];
      args.push('--total-users', String(scale.users), '--controller', ctlUrl, '--control-port', '0', '--ntp', `127.0.0.1:${ctl.ntpPort}`, '--qps', '0');
      args.push('--mode', o.mode, '--rule', o.rule, '--ramp', String(Math.max(1, share(o.ramp, scale.agents, i))), ...ips.flatMap((ip) => ['--source-ip', ip]));
      this.agents.push(this.start(`agent-${String(i + 1).padStart(2, '0')}`, args));
      first += count;
    }
    await Promise.all(this.agents.map((a) => a.ready(30_000)));
    const connectStart = Date.now();
    const connected = Promise.all(this.agents.map((a) => a.waitEvent('connected', scale.connectTimeoutS * 1000)));
    while (!(await Promise.race([connected.then(() => true), sleep(500).then(() => false)]))) this.check();
    this.log(`all ${scale.users} users logged in after ${((Date.now() - connectStart) / 1000).toFixed(1)} s`);

    if (o.generatorRate > 0) {
      await this.api.call('POST', `${stubHttp}/generator`, { rate: o.generatorRate, total: o.generatorRate * 3600 });
    }
    if (o.senderRate > 0) {
      await this.api.call('POST', `${stubHttp}/sender`, { rate: o.senderRate, total: o.senderRate * 3600, users: 3, minUser: 0, maxUser: scale.users - 1, amount: 1000 });
    }
    this.log(`generator ${o.generatorRate} envelopes/s and sending service ${o.senderRate} envelopes/s (3 users each) on`);

    for (const [k, phase] of scale.phases.entries()) {
      const change = await this.api.call<{ at: number; agents: Array<{ id: string; ok: boolean; error?: string }> }>('POST', `${ctlUrl}/qps`, { qps: phase.qps });
      const failed = change.agents.filter((a) => !a.ok);
      if (failed.length) throw new Error(`agents refused QPS ${phase.qps}: ${failed.map((f) => `${f.id}: ${f.error}`).join('; ')}`);
      this.log(`phase ${k + 1}: ${phase.qps} QPS from second ${change.at} for ${phase.seconds} s`);
      this.io.stdout(JSON.stringify({ event: 'phase', phase: k + 1, qps: phase.qps, at: change.at, seconds: phase.seconds }));
      await this.wait(change.at * 1000 + phase.seconds * 1000 - Date.now());
    }
    // Back to zero, so the run's last phase ends where the experiment does; let the last seconds
    // settle (agents push second now-2), then close the run while everyone is still up.
    const end = await this.api.call<{ at: number }>('POST', `${ctlUrl}/qps`, { qps: 0 });
    await this.wait(end.at * 1000 + 4000 - Date.now());
    this.log('closing the run: summary and charts');
    const stopped = await this.api.call<ChildEvent>('POST', `${ctlUrl}/runs/${ctl.run}/stop`, {});
    this.stopped = { ...stopped, event: 'stopped', run: stopped.id };
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
    const text = `${table}\ncharts:\n${charts.map((c) => `  ${c}`).join('\n')}\n`;
    writeFileSync(join(String(stopped.dir), 'summary.txt'), text);
    this.io.stderr(`\nrun ${stopped.run} in ${stopped.dir}\n${text}`);
    this.io.stdout(JSON.stringify({ event: 'demo', run: stopped.run, dir: stopped.dir, charts, summary }));
  }
}
