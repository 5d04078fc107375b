// report.html: one self-contained file per run. A short real run (`hongbao demo`: stub, controller,
// two agents) is opened from file:// in real headless Chromium with the network off; a synthetic
// 1-hour run bounds its size; `hongbao chart A --compare B` overlays two runs.
import test, { type ExecutionContext } from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { needing, which } from './helpers/tools.ts';
import { phaseTable, type Summary } from '../common/summary-format.ts';
import { CHART_DEFS } from '../controller/chart-defs.ts';
import { loadReportRun, writeReport } from '../controller/report.ts';
import { findingsOf, spans } from '../controller/report-problems.ts';
import type { RunMeta } from '../controller/run.ts';
import { readSeries } from '../controller/run.ts';
import { latestRows, summarize } from '../controller/summary.ts';
import { CliProcess } from '../common/child.ts';
import { closedPort, setup } from './helpers/controller.ts';
import { CLI, runCli } from './helpers/process.ts';
import { syntheticRows } from './helpers/series.ts';

const chromiumTool = needing([['chromium', 'chromium']]);
const browserTest = chromiumTool.test;
const needs = chromiumTool.why;

/** One short real run for the browser tests: 2 agents, 400 users, 60 then 120 QPS. */
let realRun: Promise<{ dir: string; stderr: string; event: Record<string, unknown> }> | undefined;
function shortRealRun() {
  realRun ??= (async () => {
    const results = mkdtempSync(join(tmpdir(), 'hb-report-'));
    const p = new CliProcess('demo', [process.execPath, CLI], ['demo', '--results', results, '--users', '400', '--agents', '2', '--phases', '60:3,120:3'], { ...process.env });
    const { code } = await p.exited;
    if (code !== 0) throw new Error(`demo exited ${code}: ${p.stderr().slice(-2000)}`);
    const event = p.events.find((e) => e.event === 'demo') as Record<string, unknown>;
    return { dir: String(event.dir), stderr: p.stderr(), event };
  })();
  return realRun;
}

/** Opens a file in Chromium with the network off; records console errors and every request. */
async function openOffline(t: ExecutionContext, browser: Browser, path: string): Promise<{ page: Page; errors: string[]; requests: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, offline: true });
  t.teardown(() => context.close());
  const page = await context.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(pathToFileURL(path).href);
  await page.waitForFunction(() => (window as any).hb?.ready === true, undefined, { timeout: 20_000 });
  return { page, errors, requests };
}

async function launch(t: ExecutionContext): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: which('chromium'), args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  t.teardown(() => browser.close());
  return browser;
}

const tableCells = (page: Page, selector: string) =>
  page.$$eval(`${selector} tr`, (trs) => trs.map((tr) => Array.from(tr.querySelectorAll('th, td')).map((c) => (c.textContent ?? '').trim())));

/** Points with a value, per dataset, per chart. */
const pointsPerChart = (page: Page) =>
  page.evaluate(() =>
    Object.fromEntries(Object.entries((window as any).hb.charts).map(([name, c]: [string, any]) => [name, c.data.datasets.map((d: any) => ({ label: d.label, n: d.data.filter((p: any) => p.y !== null).length }))])),
  ) as Promise<Record<string, Array<{ label: string; n: number }>>>;

browserTest(`report: a short real run's report.html opens from file:// offline: no console error, summary.txt's numbers, charts with data, hover and zoom${needs}`, async (t) => {
  t.timeout(180_000);
  const run = await shortRealRun();
  const path = join(run.dir, 'report.html');
  t.is(run.event.report, path, 'the demo names the report');
  t.regex(run.stderr.trim().split('\n').pop()!, new RegExp(`^  ${pathToFileURL(path).href}$`), "the demo's last line links the report");
  t.true(readFileSync(join(run.dir, 'summary.txt'), 'utf8').includes(pathToFileURL(path).href), 'summary.txt links it too');

  const script = readFileSync(join('dist', 'charts.js')).length;
  t.true(statSync(path).size <= statSync(join(run.dir, 'series.ndjson')).size + script, 'no larger than the series plus the inlined script');

  const browser = await launch(t);
  const { page, errors, requests } = await openOffline(t, browser, path);
  const rows = latestRows(readSeries(run.dir));
  const summary = JSON.parse(readFileSync(join(run.dir, 'summary.json'), 'utf8')) as Summary;
  const meta = JSON.parse(readFileSync(join(run.dir, 'run.json'), 'utf8')) as RunMeta;

  // The phase table: the numbers of summary.json, the lines of summary.txt.
  const cells = await tableCells(page, '#phases table.phases');
  t.deepEqual(cells, phaseTable(summary.phases));
  const loaded = summary.phases.filter((p) => p.targetQps);
  t.deepEqual(loaded.map((p) => p.targetQps), [60, 120]);
  for (const p of loaded) {
    const row = cells.find((r) => r[0] === `${p.targetQps} QPS`)!;
    t.deepEqual([row[1], row[3], row[4], row[5], row[6]], [p.seconds, p.sent, p.answered, p.won, p.missed].map(String));
  }
  const txt = readFileSync(join(run.dir, 'summary.txt'), 'utf8').split('\n');
  for (const r of cells.slice(1)) t.true(txt.some((l) => l.trim().split(/\s{2,}/).join('|') === r.join('|')), `summary.txt has the row ${r.join(' | ')}`);

  // Facts: run, agents with their source IPs, QPS changes with their `at`, the audit.
  t.regex((await page.textContent('#about'))!, new RegExp(`${meta.id}[\\s\\S]*started[\\s\\S]*ended[\\s\\S]*hongbao demo --results`));
  const agents = await tableCells(page, '#agents table');
  t.deepEqual(agents.slice(1).map((r) => [r[0], r[5]]), [['agent-01', 'active'], ['agent-02', 'active']]);
  t.regex(agents[1][3], /^127\.0\.0\.\d+/, 'source IPs');
  const qps = await tableCells(page, '#qps table');
  t.deepEqual(qps.slice(1).map((r) => [r[1], r[2]]), meta.qpsChanges.map((c) => [String(c.qps), String(c.at)]));
  t.regex((await page.textContent('#audit'))!, /generator reconciles[\s\S]*sender reconciles/);
  t.truthy(await page.textContent('#problems'));

  // Every chart has its points; the sent line is the series'.
  const points = await pointsPerChart(page);
  t.deepEqual(Object.keys(points).sort(), CHART_DEFS.map((d) => d.name).sort());
  for (const def of CHART_DEFS) {
    t.is(points[def.name].length, def.lines.length);
    t.true(points[def.name].some((d) => d.n > 0), `${def.name} has data points`);
  }
  t.is(points['client-qps'][1].n, rows.length);
  const sent = await page.evaluate(() => (window as any).hb.charts['client-qps'].data.datasets[1].data.map((p: any) => p.y));
  t.deepEqual(sent, rows.map((r) => r.client.sent));

  // Hover a second of the 120 QPS phase: the tooltip reads that second's values.
  const busy = rows.find((r) => r.targetQps === 120 && r.client.sent === 120) ?? rows.find((r) => r.targetQps === 120)!;
  const x = busy.second - meta.startSecond;
  await page.locator('#chart-client-qps').scrollIntoViewIfNeeded();
  const at = (v: number) =>
    page.evaluate((v) => {
      const c = (window as any).hb.charts['client-qps'];
      const r = c.canvas.getBoundingClientRect();
      return { x: r.left + c.scales.x.getPixelForValue(v), y: r.top + (c.chartArea.top + c.chartArea.bottom) / 2 };
    }, v);
  const p = await at(x);
  await page.mouse.move(p.x, p.y);
  await page.waitForFunction(() => (window as any).hb.charts['client-qps'].tooltip.opacity > 0, undefined, { timeout: 5000 });
  const tip = await page.evaluate(() => {
    const tt = (window as any).hb.charts['client-qps'].tooltip;
    return { title: tt.title.join(' '), lines: tt.body.map((b: any) => b.lines.join(' ')) };
  });
  t.regex(tip.title, new RegExp(`^second ${x} \\(\\d\\d:\\d\\d:\\d\\d UTC\\)$`));
  t.true(tip.lines.includes(`sent: ${busy.client.sent}`), tip.lines.join('; '));
  t.true(tip.lines.includes(`target: ${busy.targetQps}`), tip.lines.join('; '));

  // Drag from the first to the last loaded second: every chart shows that range; double-click: all.
  const first = rows.find((r) => r.targetQps === 60)!.second - meta.startSecond;
  const last = busy.second - meta.startSecond;
  const a = await at(first);
  const b = await at(last);
  await page.mouse.move(a.x, a.y);
  await page.mouse.down();
  await page.mouse.move(b.x, b.y, { steps: 4 });
  await page.mouse.up();
  const ranges = await page.evaluate(() => Object.values((window as any).hb.charts).map((c: any) => [c.scales.x.min, c.scales.x.max]));
  for (const [min, max] of ranges) t.true(Math.abs(min - first) <= 1 && Math.abs(max - last) <= 1, `zoomed to ${min}-${max}, dragged ${first}-${last}`);
  t.regex((await page.textContent('#range'))!, /^seconds \d+ to \d+$/);
  await page.dblclick('#chart-latency');
  const full = await page.evaluate(() => Object.values((window as any).hb.charts).map((c: any) => [c.scales.x.min, c.scales.x.max]));
  const span = [rows[0].second - meta.startSecond, rows[rows.length - 1].second - meta.startSecond];
  for (const r of full) t.deepEqual(r, span);

  t.deepEqual(errors, [], 'no console error');
  t.deepEqual(requests, [pathToFileURL(path).href], 'no request but the file itself');
});

browserTest(`report: hongbao chart A --compare B overlays both runs on every chart and puts their phase tables side by side${needs}`, async (t) => {
  t.timeout(180_000);
  const a = await shortRealRun();
  const bDir = join(mkdtempSync(join(tmpdir(), 'hb-cmp-')), '20270101-000000');
  mkdirSync(bDir);
  const bRows = syntheticRows(1_800_000_000, 40);
  writeFileSync(join(bDir, 'series.ndjson'), bRows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const out = join(bDir, 'cmp.html');
  const r = await runCli(['chart', a.dir, '--compare', bDir, '--out', out], {}, 30_000);
  t.is(r.code, 0, r.stderr);
  t.is(JSON.parse(r.stdout.trim()).report, out);

  const browser = await launch(t);
  const { page, errors, requests } = await openOffline(t, browser, out);
  const points = await pointsPerChart(page);
  for (const def of CHART_DEFS) {
    const sets = points[def.name];
    t.is(sets.length, 2 * def.lines.length, `${def.name}: the lines of both runs`);
    t.true(sets.some((d) => d.label.endsWith('(A)') && d.n > 0) && sets.some((d) => d.label.endsWith('(B)') && d.n > 0), `${def.name}: both runs have points`);
  }
  const tables = await page.$$('#phases .pair > div');
  t.is(tables.length, 2, 'two phase tables');
  const [boxA, boxB] = await Promise.all(tables.map((e) => e.boundingBox()));
  t.true(boxA!.y === boxB!.y && boxB!.x >= boxA!.x + boxA!.width, 'side by side');
  const aSummary = JSON.parse(readFileSync(join(a.dir, 'summary.json'), 'utf8')) as Summary;
  t.deepEqual(await tableCells(page, '#phases .pair > div:nth-child(1) table'), phaseTable(aSummary.phases));
  t.deepEqual(await tableCells(page, '#phases .pair > div:nth-child(2) table'), phaseTable(summarize('b', bRows).phases));
  t.deepEqual(errors, []);
  t.deepEqual(requests, [pathToFileURL(out).href]);

  const bad = await runCli(['chart', a.dir, '--compare', tmpdir()]);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--compare .* has no series.ndjson/);
  const noCompare = await runCli(['chart', a.dir, '--out', out]);
  t.is(noCompare.code, 2);
  t.regex(noCompare.stderr, /--out is for --compare/);
});

test('report: a 1-hour run of 17 agents makes a report no larger than its series plus the inlined script', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hb-report-size-'));
  const rows = syntheticRows(1_800_000_000, 3600, 17);
  writeFileSync(join(dir, 'series.ndjson'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const path = writeReport(dir, readSeries(dir));
  const report = statSync(path).size;
  const series = statSync(join(dir, 'series.ndjson')).size;
  const script = readFileSync(join('dist', 'charts.js')).length;
  t.log(`1-hour run, 17 agents: report.html ${(report / 1024).toFixed(0)} KiB (script ${(script / 1024).toFixed(0)} KiB), series.ndjson ${(series / 1024 / 1024).toFixed(1)} MiB`);
  t.true(report <= series + script, `report ${report} B > series ${series} B + script ${script} B`);
  // Columns, not an object per second: the data is about 100 bytes per second.
  t.true(report - script < 3600 * 120, `report data ${report - script} B for 3600 seconds`);
  t.is((readFileSync(path, 'utf8').match(/"second":/g) ?? []).length, 0, 'no object per second inlined');
});

test('report: what went wrong lists lost and silent agents, missed and unanswered shakes, errors, refused QPS changes, a failed audit', (t) => {
  const start = 1_800_000_000;
  const rows = syntheticRows(start, 30).map((r, i) => ({
    ...r,
    missingAgents: i >= 20 && i <= 22 ? ['vm-02'] : [],
    client: { ...r.client, answered: r.client.sent - (i === 5 ? 2 : 0), errors: i === 7 ? 4 : 0 },
    server: i === 29 ? null : r.server,
  }));
  const meta: RunMeta = {
    id: 'x',
    startedAt: new Date(start * 1000).toISOString(),
    startSecond: start,
    stoppedAt: new Date((start + 30) * 1000).toISOString(),
    config: { stub: 'http://127.0.0.1:9' },
    agents: { 'vm-02': { id: 'vm-02', lost: true, lostAtSecond: start + 20 } },
    qpsChanges: [{ qps: 60000, at: start + 15, requestedAt: 0, agents: [{ id: 'vm-01', ok: true }, { id: 'vm-02', ok: false, error: 'no answer within 1500 ms' }] }],
  };
  const { problems, notes } = findingsOf({ id: 'x', dir: '', meta, rows, summary: summarize('x', rows), audit: { at: '', url: 'http://127.0.0.1:9/audit', error: 'ECONNREFUSED' } });
  t.deepEqual(problems, [
    'agent vm-02 was lost: no samples from second 20 on',
    'agent vm-02 sent no sample for 3 seconds (seconds 20-22)',
    '7 shakes missed (not sent in their second) in 1 second: 25',
    '2 shakes sent but not answered, in 1 second: 5',
    '4 errors at the agents, in seconds 7',
    'no counters from the stub for 1 second (seconds 29)',
    'QPS 60000 from second 15: vm-02 did not take it (no answer within 1500 ms)',
    "the stub's audit could not be read: ECONNREFUSED",
  ]);
  t.deepEqual(notes, []);
  t.is(spans([1, 2, 3, 5, 7, 8]), '1-3, 5, 7-8');
  t.is(spans([1, 3, 5, 7], 2), '1, 3, ...');
});

test('controller: stopping a run reads the stub audit into audit.json (or why not) and serves report.html', async (t) => {
  const port = await closedPort();
  const { post, app, ctl, advance, now } = setup(t, { stubUrl: `http://127.0.0.1:${port}`, callTimeoutMs: 1000 });
  const id = ctl.run!.id;
  await post('/agents', { id: 'a', controlUrl: 'http://127.0.0.1:9', sourceAddresses: ['10.0.0.2-10.0.0.9'] });
  for (let i = 0; i < 3; i++) {
    await post('/agents/a/samples', { second: Math.floor(now() / 1000), sent: 10, answered: 10, connections: 10 });
    advance(1000);
  }
  t.is((await app.inject({ url: `/runs/${id}/report.html` })).statusCode, 404, 'no report yet');
  t.false((await app.inject({ url: '/runs' })).json().runs[0].report);
  const stop = await post(`/runs/${id}/stop`, {});
  t.is(stop.statusCode, 200);
  t.is(stop.json().report, join(ctl.run!.dir, 'report.html'));
  const audit = JSON.parse(readFileSync(join(ctl.run!.dir, 'audit.json'), 'utf8'));
  t.is(audit.url, `http://127.0.0.1:${port}/audit`);
  t.is(audit.error, 'ECONNREFUSED');
  const page = await app.inject({ url: `/runs/${id}/report.html` });
  t.is(page.statusCode, 200);
  t.regex(page.headers['content-type'] as string, /^text\/html/);
  t.regex(page.body, /the stub&#39;s audit could not be read: ECONNREFUSED/);
  t.regex(page.body, /10\.0\.0\.2-10\.0\.0\.9/, "the agent's source addresses");
  t.true((await app.inject({ url: '/runs' })).json().runs[0].report);
  const loaded = loadReportRun(ctl.run!.dir, readSeries(ctl.run!.dir));
  t.is(loaded.summary.totals.sent, 30);
});
