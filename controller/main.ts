// `hongbao controller` and `hongbao chart`.
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import type { Io } from '../common/io.ts';
import { setPriority } from 'node:os';
import { join, resolve } from 'node:path';
import { assertSafeListen } from '../common/auth.ts';
import { assertListenable, assertWritableDir, listenOrExplain } from '../common/addresses.ts';
import { ConfigError } from '../common/errors.ts';
import { helpText, parseOptions } from '../common/options.ts';
import { build } from './app.ts';
import { renderCharts } from './charts.ts';
import { Controller } from './controller.ts';
import { chartCommand, controllerCommand, type ControllerOptions } from './options.ts';
import { readSeries } from './run.ts';
import { startSntp } from './sntp.ts';
import { summarize } from './summary.ts';


export async function runController(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { options: o, help } = parseOptions<ControllerOptions>(controllerCommand, argv, env);
  if (help) {
    io.stdout(helpText(controllerCommand));
    return 0;
  }
  assertSafeListen('controller', 'host', o.host, o.token);
  assertListenable('controller', 'host', o.host);
  assertWritableDir('controller', 'results', resolve(o.results));
  const ctl = new Controller({
    resultsDir: resolve(o.results),
    stubUrl: o.stub,
    token: o.token,
    leadSeconds: o.lead,
    lostAfterSeconds: o.lostAfter,
    chartEverySeconds: o.chartEvery,
    log: io.stderr,
    renderCharts: io.self ? (run) => renderInChild(io.self!, run.dir) : undefined,
  });
  const ntpHost = o.host === 'localhost' ? '127.0.0.1' : o.host;
  const ntpServe = o.ntpServe;
  const sntp = ntpServe === undefined ? undefined : await listenOrExplain('controller', 'ntp-serve', 'UDP', ntpHost, ntpServe, () => startSntp(ntpHost, ntpServe));
  const app = build(ctl);
  await listenOrExplain('controller', 'port', 'TCP', o.host, o.port, () => app.listen({ port: o.port, host: o.host }));
  const port = (app.server.address() as { port: number }).port;
  const run = ctl.startRun({ host: o.host, port, ntpServe: sntp?.port ?? null });
  let ticking = false;
  const timer = setInterval(() => {
    if (ticking) return;
    ticking = true;
    void ctl.tick().finally(() => (ticking = false));
  }, 1000);
  io.stdout(JSON.stringify({ event: 'listening', port, url: `http://${o.host}:${port}`, ntpPort: sntp?.port ?? null, run: run.id, runDir: run.dir, pid: process.pid }));
  io.stderr(`hongbao controller: http://${o.host}:${port}/ (dashboard)${sntp ? `, SNTP on udp ${o.host}:${sntp.port}` : ''}${o.stub ? `, polling ${o.stub}` : ', no stub'}`);

  return new Promise<number>((done) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      io.stderr(`hongbao controller: ${signal}, writing the run and stopping`);
      clearInterval(timer);
      try {
        if (ctl.run && !ctl.run.stopped) {
          const r = await ctl.stopRun();
          io.stdout(JSON.stringify({ event: 'stopped', run: r.id, dir: r.dir, charts: r.charts, summary: r.summary }));
        }
      } catch (err) {
        io.stderr(`hongbao controller: could not finish the run: ${(err as Error).message}`);
      }
      for (const s of ctl.subscribers) ctl.subscribers.delete(s);
      await app.close();
      await sntp?.close();
      done(0);
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
  });
}

/** Runs `hongbao chart DIR` in a child process; resolves to the PNG paths it wrote. */
function renderInChild(self: readonly string[], dir: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(self[0], [...self.slice(1), 'chart', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Drawing is the least urgent work on a load-test box: never steal CPU from agents or the stub.
    try {
      if (child.pid) setPriority(child.pid, 19);
    } catch {
      // not permitted: draw at normal priority
    }
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`hongbao chart exited with ${code}: ${err.trim().split('\n').pop()}`));
      try {
        resolve((JSON.parse(out.trim().split('\n').pop()!) as { charts: string[] }).charts);
      } catch {
        reject(new Error(`hongbao chart printed no charts line: ${out.slice(0, 200)}`));
      }
    });
  });
}

/** `hongbao chart DIR`: re-renders charts and summary.json from series.ndjson. */
export async function runChart(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { positionals, help } = parseOptions(chartCommand, argv, env);
  if (help) {
    io.stdout(helpText(chartCommand));
    return 0;
  }
  if (positionals.length !== 1) throw new ConfigError('hongbao chart: give exactly one run folder, e.g. hongbao chart results/20261123-153000');
  const dir = resolve(positionals[0]);
  if (!existsSync(join(dir, 'series.ndjson'))) throw new ConfigError(`hongbao chart: ${dir} has no series.ndjson (not a run folder)`);
  const rows = readSeries(dir);
  const id = dir.split('/').pop()!;
  const summary = summarize(id, rows);
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  let charts: string[];
  try {
    charts = await renderCharts(dir, id, rows);
  } catch (err) {
    // One line (the controller reports a chart child's last line): a missing package names itself.
    io.stderr(`hongbao chart: ${(err as Error).message}`);
    return 1;
  }
  io.stdout(JSON.stringify({ event: 'charts', run: id, seconds: summary.seconds, charts }));
  io.stderr(`hongbao chart: ${charts.length} charts from ${summary.seconds} seconds in ${join(dir, 'charts')}`);
  return 0;
}
