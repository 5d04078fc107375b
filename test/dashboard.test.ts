// The live dashboard in real headless Chromium (Debian's chromium via playwright-core): charts fill
// from server-sent events, agents show the age of their last sample, the run list links the run's
// report.html, and the form retargets QPS through the controller.
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { fakeAgent } from './helpers/controller.ts';
import { startCli, waitFor } from './helpers/process.ts';
import { needing, which } from './helpers/tools.ts';

const chromiumTool = needing([['chromium', 'chromium']]);

chromiumTool.test(`dashboard: charts fill from SSE, agents show their last sample's age, runs link their report.html, the form retargets QPS${chromiumTool.why}`, async (t) => {
  t.timeout(90_000);
  const results = mkdtempSync(join(tmpdir(), 'hb-dash-'));
  const ctl = await startCli<{ port: number }>(t, ['controller', '--port', '0', '--results', results], { env: { HONGBAO_TOKEN: 'dash-token' } });
  const base = `http://127.0.0.1:${ctl.ready.port}`;
  const auth = { 'content-type': 'application/json', authorization: 'Bearer dash-token' };
  const agent = await fakeAgent(t);
  const reg = await fetch(`${base}/agents`, { method: 'POST', headers: auth, body: JSON.stringify({ id: 'vm-01', controlUrl: agent.url, totalUsers: 1000 }) });
  t.is(reg.status, 201);
  // An agent pushing a sample every second while the browser watches.
  let sent = 0;
  const pusher = setInterval(() => {
    const second = Math.floor(Date.now() / 1000) - 1;
    sent += 100;
    void fetch(`${base}/agents/vm-01/samples`, { method: 'POST', headers: auth, body: JSON.stringify({ second, sent: 100, answered: 100, connections: 1000, qps: 100 }) });
  }, 1000);
  t.teardown(() => clearInterval(pusher));

  const browser = await chromium.launch({
    executablePath: which('chromium'),
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(base + '/');
  await page.waitForFunction(() => (window as any).hb?.ready && (window as any).hb.rows.size >= 3, undefined, { timeout: 30_000 });
  const points = await page.evaluate(() => {
    const hb = (window as any).hb;
    return Object.fromEntries(Object.entries(hb.charts).map(([name, chart]: [string, any]) => [name, chart.data.datasets.map((d: any) => d.data.length)]));
  });
  t.deepEqual(Object.keys(points).sort(), ['client-qps', 'connections', 'envelopes', 'latency', 'pps', 'server-qps']);
  t.true(points['client-qps'][1] >= 3, 'the sent line has points');
  const sentValues = await page.evaluate(() => (window as any).hb.charts['client-qps'].data.datasets[1].data.map((p: any) => p.y));
  t.true(sentValues.includes(100), 'the pushed samples are drawn');
  // The age of the last sample, not an epoch second; the run's report linked once it is written.
  await waitFor('the agent table shows an age', async () => /^\d+ s ago$/.test((await page.textContent('#agents td.age')) ?? ''), 10_000);
  const link = page.locator('#runs a[href$="/report.html"]');
  await link.waitFor({ timeout: 30_000 });
  const report = await fetch(new URL((await link.getAttribute('href'))!, base));
  t.is(report.status, 200);
  t.regex(await report.text(), /<script type="application\/json" id="hb-data">/);
  const eventsBefore = await page.evaluate(() => (window as any).hb.events);
  await page.waitForFunction((n) => (window as any).hb.events > n, eventsBefore, { timeout: 10_000 });

  await page.fill('#tokenInput', 'dash-token');
  await page.fill('#qpsInput', '250');
  await page.click('button[type=submit]');
  await page.waitForFunction(() => /agents accepted/.test(document.getElementById('result')!.textContent ?? ''), undefined, { timeout: 10_000 });
  t.regex((await page.textContent('#result'))!, /QPS 250 from second \d+: 1\/1 agents accepted/);
  t.is((agent.got[0].body as { qps: number }).qps, 250);
  const history = (await (await fetch(`${base}/qps`)).json()) as { history: Array<{ qps: number }> };
  t.deepEqual(history.history.map((h) => h.qps), [250]);
  await waitFor('the header shows the new QPS', async () => /250/.test((await page.textContent('#qps')) ?? ''), 10_000);
  await page.screenshot({ path: join(results, 'dashboard.png'), fullPage: true });
  t.deepEqual(pageErrors, []);
});
