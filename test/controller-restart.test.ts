// A controller killed (-9) and started again on the same results directory: it continues the open
// run, knows the fleet's QPS, and records every second the agent re-pushes, with no gap and no
// second counted twice. Real stub, agent and controller processes on 127.0.0.1.
import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSeries, type RunMeta } from '../controller/run.ts';
import type { Row } from '../controller/timeline.ts';
import { Controller } from '../controller/controller.ts';
import { getJson, postJson, run, startAgent, startStub, waitFor } from './agent-helpers.ts';

/** The last line of each second (amended lines replace earlier ones). */
function bySecond(rows: Row[]): Map<number, Row> {
  const m = new Map<number, Row>();
  for (const r of rows) m.set(r.second, r);
  return m;
}

test('controller restart: continues the open run, keeps its QPS, and records the seconds the agent re-pushes', async (t) => {
  t.timeout(90_000);
  const results = mkdtempSync(join(tmpdir(), 'hb-restart-'));
  const stub = await startStub(t, 1);
  const ctlArgs = (port: number) => ['controller', '--port', String(port), '--results', results, '--stub', `http://127.0.0.1:${stub.httpPort}`, '--lost-after', '8'];
  const first = run(t, ctlArgs(0));
  const up1 = await first.event('listening');
  const port = up1.port as number; // the restarted controller listens here again
  t.false(up1.continued);
  const a = await startAgent(t, ['--server', `ws://127.0.0.1:${stub.port}`, '--users', '0:400', '--total-users', '400', '--workers', '1', '--qps', '0', '--controller', `http://127.0.0.1:${port}`]);
  await a.proc.event('connected', 20_000);
  const base = `http://127.0.0.1:${port}`;
  await waitFor('the agent registered', async () => ((await getJson<{ agents: unknown[] }>(`${base}/agents`)).agents.length === 1 ? true : undefined));
  const change = await postJson(`${base}/qps`, { qps: 200 });
  t.is(change.status, 200);
  const at = change.json.at as number;
  // Let a few loaded seconds reach series.ndjson, then kill the controller without warning.
  await waitFor('loaded seconds on disk', async () => (readSeries(up1.runDir as string).some((r) => r.second >= at + 2) ? true : undefined), 20_000);
  const killedAt = Math.floor(Date.now() / 1000);
  first.child.kill('SIGKILL');
  await first.exited;
  await new Promise((r) => setTimeout(r, 4000));

  const second = run(t, ctlArgs(port));
  const up2 = await second.event('listening');
  t.true(up2.continued, 'the open run is continued');
  t.is(up2.run, up1.run);
  const restartedAt = Math.floor(Date.now() / 1000);
  await waitFor('the restart said so', async () => (second.stderr.some((l) => l.includes(`continuing run ${up1.run} left open by a previous controller`)) ? true : undefined), 5000);
  const qps = await getJson<{ qps: number | null; at: number | null }>(`${base}/qps`);
  t.deepEqual([qps.qps, qps.at], [200, at], 'the QPS in effect survives the restart');
  // The re-pushed seconds are written once the agent caught up (a sample later than that, on a busy
  // machine, amends its second with one more line): wait until every second up to a few past the
  // restart holds the agent's sample.
  const complete = () => {
    const m = bySecond(readSeries(up1.runDir as string));
    for (let s = at; s <= restartedAt + 3; s++) if (!m.get(s) || m.get(s)!.missingAgents.length > 0) return undefined;
    return m;
  };
  await waitFor('every second from the change to 3 s past the restart recorded with the agent\'s sample', async () => complete(), 40_000, 500).catch(() => undefined);
  const rows = bySecond(readSeries(up1.runDir as string));
  const seconds = [...rows.keys()].sort((x, y) => x - y);
  for (let i = 1; i < seconds.length; i++) t.is(seconds[i], seconds[i - 1] + 1, `no gap after second ${seconds[i - 1]}`);
  // Every loaded second around the outage holds the agent's whole share: sent + missed = 200.
  for (let s = at; s <= restartedAt + 3; s++) {
    const r = rows.get(s);
    t.truthy(r, `second ${s} recorded`);
    if (!r) continue;
    t.is(r.targetQps, 200, `second ${s}: target`);
    t.deepEqual(r.missingAgents, [], `second ${s}: the agent's sample is there`);
    t.is(r.client.sent + r.client.missed, 200, `second ${s}: sent + missed`);
  }
  t.true(rows.get(killedAt + 1)!.client.sent > 0, 'a second while the controller was down holds what the agent sent');

  second.child.kill('SIGTERM');
  t.is(await second.exited, 0);
  const meta = JSON.parse(readFileSync(join(up1.runDir as string, 'run.json'), 'utf8')) as RunMeta;
  t.not(meta.stoppedAt, null, 'the continued run is closed on stop');
  t.is(meta.resumes?.length, 1);
  t.is(meta.qpsChanges.filter((c) => c.qps === 200).length, 1, 'the change is recorded once');
});

test('controller restart: an open run older than what agents keep is closed and said so; a new run learns the QPS from the agent', async (t) => {
  const results = mkdtempSync(join(tmpdir(), 'hb-restart-old-'));
  let now = 1_800_000_000_000;
  // A run left open 20 minutes ago with 3 seconds on disk and a torn fourth line.
  const dir = join(results, '20270115-080000');
  mkdirSync(join(dir, 'charts'), { recursive: true });
  const start = Math.floor(now / 1000) - 1200;
  const meta: RunMeta = { id: '20270115-080000', startedAt: new Date(start * 1000).toISOString(), startSecond: start, stoppedAt: null, config: {}, agents: {}, qpsChanges: [] };
  writeFileSync(join(dir, 'run.json'), JSON.stringify(meta));
  const row = (s: number) => ({ second: s, t: s - start, targetQps: null, client: {}, agents: {}, missingAgents: [], server: null, hist: '' });
  writeFileSync(join(dir, 'series.ndjson'), [0, 1, 2].map((i) => JSON.stringify(row(start + i))).join('\n') + '\n{"second":');
  const logs: string[] = [];
  const ctl = new Controller({ resultsDir: results, leadSeconds: 2, lostAfterSeconds: 5, chartEverySeconds: 3600, clock: () => now, log: (l) => logs.push(l), renderCharts: async () => [] });
  const r = await ctl.continueOrStartRun();
  t.false(r.continued);
  t.is(r.closed, '20270115-080000');
  const closed = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunMeta;
  t.is(closed.stoppedAt, new Date((start + 3) * 1000).toISOString());
  t.true(logs.some((l) => /closed run 20270115-080000, left open by a controller that stopped 1198 s ago/.test(l)), logs.join('\n'));
  t.is(readFileSync(join(dir, 'series.ndjson'), 'utf8').split('\n').filter(Boolean).length, 3, 'the torn line is cut off');
  t.not(r.run.id, '20270115-080000');
  // An agent already shaking registers with its QPS timeline: the new run takes the QPS in effect.
  const reg = ctl.register({ id: 'a', controlUrl: 'http://127.0.0.1:1', qpsChanges: [{ at: 0, qps: 1000 }, { at: Math.floor(now / 1000) - 30, qps: 3000 }] });
  t.is(reg.resendFrom, r.run.meta.startSecond);
  t.deepEqual(ctl.currentQps(), { qps: 3000, at: Math.floor(now / 1000) - 30 });
  t.is(ctl.qpsHistory.length, 1, 'only the change in effect, not the agent\'s whole past');
  t.is(ctl.qpsHistory[0].learnedFrom, 'a');
  // A change due later that the controller never heard of (made while it was down) is learned too.
  ctl.register({ id: 'a', controlUrl: 'http://127.0.0.1:1', qpsChanges: [{ at: Math.floor(now / 1000) - 30, qps: 3000 }, { at: Math.floor(now / 1000) + 5, qps: 6000 }] });
  now += 6000;
  t.is(ctl.currentQps().qps, 6000);
});

test('controller restart: an agent of the continued run that does not come back is reported lost, in /health and in run.json', async (t) => {
  const results = mkdtempSync(join(tmpdir(), 'hb-restart-lost-'));
  let now = 1_800_000_000_000;
  const start = Math.floor(now / 1000) - 20;
  const dir = join(results, '20270115-080000');
  mkdirSync(join(dir, 'charts'), { recursive: true });
  const agent = { id: 'gone', controlUrl: 'http://127.0.0.1:1', registeredAt: start * 1000, registeredSecond: start, lastSampleAt: null, lastSampleSecond: null, samples: 0, lost: false, lostAtSecond: null };
  const meta: RunMeta = { id: '20270115-080000', startedAt: new Date(start * 1000).toISOString(), startSecond: start, stoppedAt: null, config: {}, agents: { gone: agent }, qpsChanges: [] };
  writeFileSync(join(dir, 'run.json'), JSON.stringify(meta));
  writeFileSync(join(dir, 'series.ndjson'), '');
  const logs: string[] = [];
  const ctl = new Controller({ resultsDir: results, leadSeconds: 2, lostAfterSeconds: 5, chartEverySeconds: 3600, clock: () => now, log: (l) => logs.push(l), renderCharts: async () => [] });
  const r = await ctl.continueOrStartRun();
  t.true(r.continued);
  ctl.checkLost();
  t.deepEqual(ctl.health().agents.lost, [], 'not lost before --lost-after');
  now += 6000;
  ctl.checkLost();
  t.deepEqual(ctl.health().agents.lost, ['gone']);
  t.true(logs.some((l) => /agent gone of run 20270115-080000 did not register again within 5 s of the restart: lost from second \d+/.test(l)), logs.join('\n'));
  const saved = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunMeta;
  t.is(saved.agents.gone.lost, true, 'run.json says so too');
});
