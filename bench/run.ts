// `npm run bench`: runs the benchmark scenarios one after another within a time budget, prints a
// table on stderr and the JSON result on stdout, and writes it to bench/out/bench-<timestamp>.json.
//   node --import tsx bench/run.ts [--only NAME[,NAME]] [--budget SECONDS] [--quick]
// --only takes scenario names or their prefixes: `--only agent` runs agent-connect, agent-spread and
// agent-burst; `--only stub` the stub scenarios, `--only stub-connect` the stub's connect path.
// Every process it starts is stopped by PID on the way out, on errors, the watchdog and Ctrl-C.
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AGENT_GOALS, agentConnectScenario, agentLoadScenario, type AgentLoadConfig } from './agent-bench.ts';
import { killAllNow, stopAll } from './children.ts';
import { cliInfo, cliPath } from './cli.ts';
import { machine } from './proc.ts';
import { table, type Scenario, type ScenarioResult } from './report.ts';
import { stubScenario, type StubBenchConfig } from './stub-bench.ts';
import { stubConnectScenario } from './stub-connect-bench.ts';

const OUT_DIR = fileURLToPath(new URL('./out/', import.meta.url));
const SOURCE_IPS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];

const stubBase: Omit<StubBenchConfig, 'workers' | 'users'> = {
  processes: 2,
  rates: [10_000, 20_000],
  warmupS: 2,
  windowS: 9,
  idleS: 2,
  settleS: 3,
  generator: { rate: 200, total: 1_000_000 },
  maxQps: 65_000,
  sourceIps: SOURCE_IPS,
};

/**
 * One worker holds 19000 users, not 20000: its process has the same 20000-fd hard limit and needs
 * a few fds of its own (at 20000 the last ~20 connections hang unserved); at 20k/s the schedule
 * then fires 1000 of the users twice a second (bench/schedule.ts), the total stays exact.
 */
function stubScenarios(quick: boolean): Scenario[] {
  // --quick: a smoke run at a tenth of the scale, to check the bench itself.
  const base = quick ? { ...stubBase, rates: stubBase.rates.map((r) => r / 10), windowS: 4 } : stubBase;
  const users = (n: number) => (quick ? n / 10 : n);
  return [stubScenario({ ...base, workers: 1, users: users(19_000) }), stubScenario({ ...base, workers: 2, users: users(20_000) })];
}

/**
 * The stub's connect path: 16000 users logged in as fast as two load processes may (256
 * handshakes in flight each), against 1 worker, 2, 8 and 64 (the full-scale layout's count).
 */
function stubConnectScenarios(quick: boolean): Scenario[] {
  const users = quick ? 1600 : 16_000;
  return [1, 2, 8, 64].map((workers) => stubConnectScenario({ workers, users, processes: 2, maxInFlight: 256, idleS: 2, sourceIps: SOURCE_IPS }));
}

/**
 * The agent against the stub: connect rate and RSS of one agent worker (15000 users), then one agent
 * of 2 workers x 15000 users against a 2-worker stub at 10k/20k/30k shakes/s, in spread and in burst
 * mode (rule window). --quick: a tenth of the users and rates.
 */
function agentScenarios(quick: boolean): Scenario[] {
  const s = quick ? 10 : 1;
  const load: Omit<AgentLoadConfig, 'mode' | 'measureRss'> = {
    users: 30_000 / s,
    agentWorkers: 2,
    stubWorkers: 2,
    rates: [10_000, 20_000, 30_000].map((r) => r / s),
    warmupS: 2,
    windowS: quick ? 4 : 8,
    settleS: 3,
    sourceIps: SOURCE_IPS,
    ramp: 1_000_000,
    generator: { rate: 200, total: 1_000_000 },
    maxQps: 65_000,
    connectTimeoutMs: 120_000,
  };
  return [
    agentConnectScenario({ users: 15_000 / s, stubWorkers: 2, sourceIps: SOURCE_IPS, ramp: 1_000_000, settleS: 3, pollMs: 100, connectTimeoutMs: 90_000, maxQps: 65_000 }),
    agentLoadScenario({ ...load, mode: 'spread', measureRss: true }),
    agentLoadScenario({ ...load, mode: 'burst', measureRss: false }),
    agentLoadScenario({ ...load, mode: 'spread', measureRss: true, transport: 'tcp' }),
  ];
}

function selected(name: string, only: string[] | undefined): boolean {
  return !only || only.some((o) => name === o || name.startsWith(`${o}-`));
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const log = (line: string) => process.stderr.write(`${line}\n`);

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

async function main(): Promise<number> {
  const budgetMs = Number(arg('budget') ?? 480) * 1000;
  cliPath(); // snapshot the build now: a rebuild during the run does not change what is measured
  const only = arg('only')?.split(',');
  const quick = process.argv.includes('--quick');
  const scenarios = [...stubScenarios(quick), ...stubConnectScenarios(quick), ...agentScenarios(quick)];
  const t0 = Date.now();
  const startedAt = new Date(t0);
  const machineStart = machine();
  const results: ScenarioResult[] = [];
  const skipped: Array<{ name: string; why: string }> = [];
  const failed: Array<{ name: string; error: string }> = [];

  // Watchdog: whatever hangs, the bench ends within the budget plus a grace period.
  const watchdog = setTimeout(() => {
    log(`bench: over the ${budgetMs / 1000} s budget, stopping everything`);
    killAllNow();
    process.exit(1);
  }, budgetMs + 15_000);
  watchdog.unref();

  for (const s of scenarios) {
    if (!selected(s.name, only)) continue;
    const left = budgetMs - (Date.now() - t0);
    if (s.estimateMs > left) {
      skipped.push({ name: s.name, why: `needs ~${Math.round(s.estimateMs / 1000)} s, ${Math.round(left / 1000)} s left` });
      log(`bench: skipping ${s.name} (${skipped[skipped.length - 1].why})`);
      continue;
    }
    try {
      results.push(await s.run(log));
    } catch (err) {
      failed.push({ name: s.name, error: (err as Error).message });
      log(`bench: ${s.name} failed: ${(err as Error).stack ?? String(err)}`);
    }
    await stopAll(); // nothing of a scenario outlives it
  }

  const m = machine();
  const out = {
    bench: 'hongbao-fleet',
    startedAt: startedAt.toISOString(),
    durationS: Math.round((Date.now() - t0) / 100) / 10,
    machine: { ...m, loadavgStart: machineStart.loadavg, loadavgEnd: m.loadavg },
    program: cliInfo(),
    goals: {
      stubCpuUsPerShake: '<= 15 us (Go server ~18.7 us)',
      stubKbPerConnection: '<= 4 KB (Go server ~4.1 KB)',
      agentConnectsPerS: `>= ${AGENT_GOALS.connectsPerS.atLeast} new connections/s per process`,
      agentCpuUsPerShake: `<= ${AGENT_GOALS.cpuUsPerShake.goal} us (Go client ~${AGENT_GOALS.cpuUsPerShake.goRef} us)`,
      agentKbPerConnection: `<= ${AGENT_GOALS.kbPerConnection.goal} KB (Go client ~${AGENT_GOALS.kbPerConnection.goRef} KB)`,
    },
    notes: [
      'CPU per shake = utime + stime of all processes of that side over the window (whole epoch seconds) / shakes sent (agent) or served (stub); user and sys are reported apart: on loopback the kernel TCP work of the receiving side is partly charged to the sender.',
      'Latency = reply - scheduled send (agent per-second histograms): p50 = median second, p99 = worst second. Send lateness is not exposed by the agent.',
    ],
    figures: results.flatMap((r) => r.figures.map((f) => ({ scenario: r.name, ...f }))),
    scenarios: results,
    skipped,
    failed,
  };
  mkdirSync(OUT_DIR, { recursive: true });
  const file = `${OUT_DIR}bench-${stamp(startedAt)}.json`;
  const json = JSON.stringify(out, null, 2);
  writeFileSync(file, json + '\n');
  log('');
  log(table({ ...m, loadavg: machineStart.loadavg }, results));
  for (const f of failed) log(`FAILED ${f.name}: ${f.error}`);
  for (const s of skipped) log(`skipped ${s.name}: ${s.why}`);
  log(`bench: ${out.durationS} s, written to ${file}`);
  process.stdout.write(json + '\n');
  clearTimeout(watchdog);
  return failed.length ? 1 : 0;
}

let stopping = false;
async function interrupt(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  log(`bench: ${signal}, stopping the processes it started`);
  await stopAll(2000);
  process.exit(130);
}
process.once('SIGINT', (s) => void interrupt(s));
process.once('SIGTERM', (s) => void interrupt(s));
process.on('exit', killAllNow);

main().then(
  (code) => stopAll().then(() => process.exit(code)),
  (err: unknown) => {
    log(`bench: ${(err as Error).stack ?? String(err)}`);
    void stopAll().then(() => process.exit(1));
  },
);
