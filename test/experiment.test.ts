// The whole experiment through `hongbao demo` at a tiny scale: a real stub, a controller and two
// agents (real processes, 127.0.0.x); the QPS is retargeted mid-run through the controller.
import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliProcess } from '../common/child.ts';
import { readSeries } from '../controller/run.ts';
import { latestRows } from '../controller/summary.ts';
import { CLI } from './helpers/process.ts';
import { assertReadablePng } from './helpers/png.ts';

function demo(t: import('ava').ExecutionContext, args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  const results = mkdtempSync(join(tmpdir(), 'hb-exp-'));
  const p = new CliProcess('demo', [process.execPath, CLI], ['demo', '--results', results, '--users', '2000', '--agents', '2', ...args], { ...process.env, ...env });
  t.teardown(() => p.stop(10_000));
  return p;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('experiment: QPS retargeted mid-run lands in one second for both agents; totals match the stub', async (t) => {
  t.timeout(150_000);
  // The demo reads its own variables (HONGBAO_DEMO_*) and hands its children none of the user's:
  // each of these would make its child refuse to start (exit 2) if it got there.
  const env = { HONGBAO_DEMO_SENDER_RATE: '2', HONGBAO_AGENT_CONNECT_TIMEOUT: '1', HONGBAO_STUB_WORKERS: '0', HONGBAO_CONTROLLER_LEAD: 'soon' };
  const p = demo(t, ['--phases', '100:4,240:4', '--generator-rate', '20'], env);
  const { code } = await p.exited;
  t.is(code, 0, p.stderr().slice(-2000));
  t.regex(p.stderr(), /sending service 2 envelopes\/s/, 'HONGBAO_DEMO_SENDER_RATE is the demo\'s');
  const done = p.events.find((e) => e.event === 'demo') as unknown as { dir: string; charts: string[]; summary: { phases: Array<{ targetQps: number; seconds: number; exactSeconds: number }> } };
  t.truthy(done, 'the demo reports its run');
  const rows = latestRows(readSeries(done.dir));
  const first200 = rows.find((r) => r.targetQps === 240)!;
  t.truthy(first200);
  const before = rows.find((r) => r.second === first200.second - 1)!;
  t.is(before.targetQps, 100);
  const agents = Object.keys(first200.agents).sort();
  t.deepEqual(agents, ['agent-01', 'agent-02']);
  for (const a of agents) {
    t.is(before.agents[a].qps, 100, `${a} still at 100 in the second before`);
    t.is(first200.agents[a].qps, 240, `${a} switched in second ${first200.second}`);
  }
  const loaded = rows.filter((r) => r.targetQps);
  t.true(loaded.length >= 8);
  for (const r of loaded) {
    // Exact accounting every second: what was not sent in its second is counted missed (a loaded CI
    // machine may miss a few), never sent late.
    t.is(r.client.sent + r.client.missed, r.targetQps!, `second ${r.second}: sent + missed is the target`);
    t.is(Object.values(r.agents).reduce((n, a) => n + a.sent, 0), r.client.sent);
    t.is(r.client.answered, r.client.sent, `second ${r.second}: every shake answered`);
  }
  t.true(loaded.some((r) => r.client.sent === r.targetQps && r.server?.shakes === r.targetQps), 'seconds where fleet and stub agree exactly');
  const sum = (f: (r: (typeof rows)[number]) => number) => rows.reduce((n, r) => n + f(r), 0);
  t.is(sum((r) => r.client.sent), sum((r) => r.server?.shakes ?? 0), 'run totals match the stub');
  t.true(sum((r) => r.server?.generated ?? 0) > 0, 'the generator ran');
  t.true(sum((r) => r.client.won) > 0, 'some shakes won');
  const phases = done.summary.phases.filter((ph) => ph.targetQps);
  t.deepEqual(phases.map((ph) => ph.targetQps), [100, 240]);
  for (const ph of phases) t.is(ph.exactSeconds + loaded.filter((r) => r.targetQps === ph.targetQps && r.client.missed > 0).length, ph.seconds);
  t.is(done.charts.length, 6);
  for (const c of done.charts) await assertReadablePng(t, c);
});

test('demo: Ctrl-C stops every child process and still writes the charts', async (t) => {
  t.timeout(120_000);
  const p = demo(t, ['--phases', '100:60']);
  await p.waitEvent('phase', 90_000);
  const children = p.events.filter((e) => e.event === 'started').map((e) => e.pid as number);
  t.true(children.length >= 4, 'stub, controller and two agents');
  p.child.kill('SIGINT');
  const { code } = await p.exited;
  t.is(code, 130);
  for (const pid of children) t.false(alive(pid), `child ${pid} is gone`);
  const stopped = p.events.find((e) => e.event === 'demo') as unknown as { dir: string; charts: string[] };
  t.truthy(stopped, 'the interrupted run was still written');
  for (const c of stopped.charts) t.true(existsSync(c), c);
  t.true(readSeries(stopped.dir).length > 3);
});

test('demo --transport tcp: the fleet drives the stub over the raw-TCP framing; every second exact on both sides', async (t) => {
  t.timeout(150_000);
  const p = demo(t, ['--transport', 'tcp', '--phases', '200:4']);
  const { code } = await p.exited;
  t.is(code, 0, p.stderr().slice(-2000));
  t.regex(p.stderr(), /tcp:\/\/127\.0\.0\.1:\d+/, 'the stub listens for raw TCP');
  const done = p.events.find((e) => e.event === 'demo') as unknown as { dir: string };
  const rows = latestRows(readSeries(done.dir)).filter((r) => r.targetQps === 200);
  t.true(rows.length >= 4);
  for (const r of rows) {
    t.is(r.client.sent + r.client.missed, 200, `second ${r.second}`);
    t.is(r.client.answered, r.client.sent, `second ${r.second}: every shake answered`);
  }
  t.true(rows.some((r) => r.client.sent === 200 && r.server?.shakes === 200), 'seconds where fleet and stub agree exactly');
});
