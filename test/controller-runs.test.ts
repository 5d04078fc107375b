// Runs on disk, charts and the `hongbao chart` command.
import test from 'ava';
import { existsSync, readFileSync, writeFileSync, mkdtempSync, mkdirSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHART_NAMES, renderCharts } from '../controller/charts.ts';
import { assertReadablePng } from './helpers/png.ts';
import { readSeries } from '../controller/run.ts';
import { summarize } from '../controller/summary.ts';
import { runCli } from './helpers/process.ts';
import { setup } from './helpers/controller.ts';
import { syntheticRows } from './helpers/series.ts';

test('charts: six PNGs of the right size, drawn, with the QPS step in the data', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hb-charts-'));
  const rows = syntheticRows(1_800_000_000);
  const paths = await renderCharts(dir, 'test-run', rows);
  t.deepEqual(paths.map((p) => p.split('/').pop()), CHART_NAMES.map((n) => `${n}.png`));
  for (const p of paths) await assertReadablePng(t, p);
});

test('summary: phases of constant target with exact seconds and merged latency', (t) => {
  const rows = syntheticRows(1_800_000_000);
  const s = summarize('r', [...rows, { ...rows[25], client: { ...rows[25].client, sent: 59990 }, amended: true }]);
  t.is(s.seconds, 40, 'an amended line replaces its second');
  t.is(s.phases.length, 2);
  t.deepEqual([s.phases[0].targetQps, s.phases[0].seconds, s.phases[0].exactSeconds], [30000, 20, 20]);
  t.deepEqual([s.phases[1].targetQps, s.phases[1].seconds, s.phases[1].exactSeconds], [60000, 20, 19]);
  t.is(s.phases[1].missed, 7);
  t.true(s.phases[0].p99Ms < s.phases[1].p99Ms);
  t.is(s.totals.sent, 30000 * 20 + 60000 * 20 - 10);
});

test('hongbao chart: re-renders charts and summary from series.ndjson, even with a torn last line', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'hb-chartcli-')), '20261123-120000');
  mkdirSync(dir);
  writeFileSync(join(dir, 'series.ndjson'), syntheticRows(1_800_000_000).map((r) => JSON.stringify(r)).join('\n') + '\n');
  appendFileSync(join(dir, 'series.ndjson'), '{"second": 18000000');
  t.is(readSeries(dir).length, 40);
  const r = await runCli(['chart', dir], {}, 60000);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim());
  t.is(out.seconds, 40);
  for (const p of out.charts) await assertReadablePng(t, p);
  t.is(JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')).phases.length, 2);
  const bad = await runCli(['chart', tmpdir()]);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /has no series.ndjson/);
});

test('controller: runs are listed, stopped with summary and charts, and a new one can start', async (t) => {
  const { post, app, ctl, advance, now } = setup(t);
  const id = ctl.run!.id;
  await post('/agents', { id: 'a', controlUrl: 'http://127.0.0.1:9' });
  for (let i = 0; i < 5; i++) {
    await post('/agents/a/samples', { second: Math.floor(now() / 1000), sent: 100 + i, answered: 100, connections: 1000 });
    advance(1000);
  }
  const runs = (await app.inject({ url: '/runs' })).json().runs;
  t.deepEqual(runs.map((r: { id: string; current: boolean }) => [r.id, r.current]), [[id, true]]);
  t.is((await app.inject({ url: `/runs/${id}/charts/latency.png` })).statusCode, 404, 'no chart rendered yet');
  const stop = await post(`/runs/${id}/stop`, {});
  t.is(stop.statusCode, 200);
  t.is(stop.json().charts.length, 6);
  t.is(stop.json().summary.totals.sent, 100 + 101 + 102 + 103 + 104);
  t.true(existsSync(join(ctl.run!.dir, 'summary.json')));
  const png = await app.inject({ url: `/runs/${id}/charts/client-qps.png` });
  t.is(png.statusCode, 200);
  t.is(png.headers['content-type'], 'image/png');
  t.deepEqual([...png.rawPayload.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  t.is((await post(`/runs/${id}/stop`, {})).statusCode, 404, 'already stopped');
  t.is((await app.inject({ url: `/runs/${id}/charts/nope.png` })).statusCode, 400);
  advance(1000);
  const again = await post('/runs', {});
  t.is(again.statusCode, 201);
  t.not(again.json().id, id);
});
