// `hongbao controller` and `hongbao chart`.
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import type { Io } from '../common/io.ts';
import { setPriority } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { assertSafeListen } from '../common/auth.ts';
import { assertListenable, assertWritableDir, listenOrExplain } from '../common/addresses.ts';
import { ConfigError } from '../common/errors.ts';
import { helpText, parseOptions } from '../common/options.ts';
import { build } from './app.ts';
import { renderCharts } from './charts.ts';
import { Controller } from './controller.ts';
import { chartCommand, controllerCommand, type ChartOptions, type ControllerOptions } from './options.ts';
import { loadReportRun, reportHtml, writeReport } from './report.ts';
import { readSeries } from './run.ts';
import { writeAtomic } from './files.ts';
import { startSntp } from './sntp.ts';
import { summarize } from './summary.ts';


export async function runController(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { options: o, help } = parseOptions<ControllerOptions>(controllerCommand, argv, env);
  if (help) {
    io.stdout(helpText(controllerCommand));
    return 0;
  }
  assertListenable('controller', 'host', o.host);
  assertSafeListen('controller', 'host', o.host, o.token);
  assertWritableDir('controller', 'results', resolve(o.results));
  const ctl = new Controller({
    resultsDir: resolve(o.results),
    stubUrl: o.stub,
    token: o.token,
    leadSeconds: o.lead,
    lostAfterSeconds: o.lostAfter,
    chartEverySeconds: o.chartEvery,
    // The last seconds' samples come in within about 2 s of their end.
    stopGraceMs: 3000,
    log: io.stderr,
    renderCharts: io.self ? (run) => renderInChild(io.self!, run.dir, env) : undefined,
  });
  const ntpHost = o.host === 'localhost' ? '127.0.0.1' : o.host;
  const ntpServe = o.ntpServe;
  const sntp = ntpServe === undefined ? undefined : await listenOrExplain('controller', 'ntp-serve', 'UDP', ntpHost, ntpServe, () => startSntp(ntpHost, ntpServe));
  const app = build(ctl);
  await listenOrExplain('controller', 'port', 'TCP', o.host, o.port, () => app.listen({ port: o.port, host: o.host }));
  const port = (app.server.address() as { port: number }).port;
  const { run, continued, closed } = await ctl.continueOrStartRun({ command: commandLine('controller', argv), ...(o.note ? { note: o.note } : {}), host: o.host, port, ntpServe: sntp?.port ?? null });
  let ticking = false;
  const timer = setInterval(() => {
    if (ticking) return;
    ticking = true;
    void ctl.tick().finally(() => (ticking = false));
  }, 1000);
  io.stdout(JSON.stringify({ event: 'listening', port, url: `http://${o.host}:${port}`, ntpPort: sntp?.port ?? null, run: run.id, runDir: run.dir, continued, ...(closed ? { closed } : {}), pid: process.pid }));
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
          io.stdout(JSON.stringify({ event: 'stopped', run: r.id, dir: r.dir, charts: r.charts, report: r.report, summary: r.summary }));
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

/** `hongbao NAME ARGS` as typed (quoted where needed), the token's value hidden. */
export function commandLine(name: string, argv: readonly string[]): string {
  const shown = argv.map((a, i) => (argv[i - 1] === '--token' ? '***' : a.startsWith('--token=') ? '--token=***' : a));
  return ['hongbao', name, ...shown].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Runs `hongbao chart DIR` in a child process; resolves to the PNG paths it wrote. */
function renderInChild(self: readonly string[], dir: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  return new Promise((resolve, reject) => {
    // The run's own report, whatever the controller's environment says about comparing.
    const { HONGBAO_COMPARE: _compare, HONGBAO_OUT: _out, ...childEnv } = env;
    const child = spawn(self[0], [...self.slice(1), 'chart', dir], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv });
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

function runFolder(arg: string, flag = ''): string {
  const dir = resolve(arg);
  if (!existsSync(join(dir, 'series.ndjson'))) throw new ConfigError(`hongbao chart: ${flag}${dir} has no series.ndjson (not a run folder)`);
  return dir;
}

/** `hongbao chart DIR`: re-renders report.html, charts and summary.json from series.ndjson; `--compare B`: one report of both. */
export async function runChart(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { options: o, positionals, help } = parseOptions<ChartOptions>(chartCommand, argv, env);
  if (help) {
    io.stdout(helpText(chartCommand));
    return 0;
  }
  if (positionals.length !== 1) throw new ConfigError('hongbao chart: give exactly one run folder, e.g. hongbao chart results/20261123-153000');
  const dir = runFolder(positionals[0]);
  if (o.out !== undefined && o.compare === undefined) throw new ConfigError('hongbao chart: --out is for --compare (the report of one run is RUN/report.html)');
  if (o.compare !== undefined) {
    const other = runFolder(o.compare, '--compare ');
    const runs = [loadReportRun(dir, readSeries(dir)), loadReportRun(other, readSeries(other))];
    const out = resolve(o.out ?? join(dir, `compare-${runs[1].id}.html`));
    if (!existsSync(dirname(out))) throw new ConfigError(`hongbao chart: --out ${out}: folder ${dirname(out)} does not exist`);
    writeAtomic(out, reportHtml(runs));
    io.stdout(JSON.stringify({ event: 'report', runs: runs.map((r) => r.id), report: out }));
    io.stderr(`hongbao chart: ${runs[0].id} (A) and ${runs[1].id} (B) in ${out}`);
    return 0;
  }
  const rows = readSeries(dir);
  const id = dir.split('/').pop()!;
  const summary = summarize(id, rows);
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  const report = writeReport(dir, rows);
  let charts: string[];
  try {
    charts = await renderCharts(dir, id, rows);
  } catch (err) {
    // One line (the controller reports a chart child's last line): a missing package names itself.
    io.stderr(`hongbao chart: ${(err as Error).message} (the report is written: ${report})`);
    return 1;
  }
  io.stdout(JSON.stringify({ event: 'charts', run: id, seconds: summary.seconds, charts, report }));
  io.stderr(`hongbao chart: ${report} and ${charts.length} charts from ${summary.seconds} seconds in ${join(dir, 'charts')}`);
  return 0;
}
