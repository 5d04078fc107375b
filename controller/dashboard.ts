// GET / : the live dashboard. Chart.js in the browser, fed by server-sent events (/events), with the
// same six charts as the PNGs (the line definitions come from charts.ts) and a form to retarget QPS.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chartDefsSource } from './charts.ts';

declare const __HONGBAO_CHART_UMD__: string | undefined;

let chartJs: string | undefined;

/** Chart.js's UMD build: inlined into dist/hongbao.cjs at build time, read from node_modules otherwise. */
export function chartJsSource(): string {
  if (chartJs !== undefined) return chartJs;
  if (typeof __HONGBAO_CHART_UMD__ === 'string') return (chartJs = __HONGBAO_CHART_UMD__);
  const require = createRequire(join(process.cwd(), 'package.json'));
  return (chartJs = readFileSync(require.resolve('chart.js/dist/chart.umd.js'), 'utf8'));
}

export function dashboardHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>hongbao-fleet controller</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px system-ui, sans-serif; margin: 16px; color: #222; }
  header { display: flex; flex-wrap: wrap; gap: 24px; align-items: baseline; }
  h1 { font-size: 20px; margin: 0; }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 16px; margin-top: 16px; }
  .card { border: 1px solid #ddd; border-radius: 6px; padding: 8px; }
  canvas { width: 100% !important; height: 260px !important; }
  form { display: flex; gap: 8px; align-items: center; }
  input { width: 110px; }
  #result { font-family: monospace; }
  table { border-collapse: collapse; }
  td, th { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: left; }
  .lost { color: #c00; font-weight: bold; }
</style>
</head>
<body>
<header>
  <h1>hongbao-fleet</h1>
  <div>run <b id="run">-</b></div>
  <div>fleet QPS <b id="qps">-</b></div>
  <div>agents <b id="agentCount">0</b></div>
  <form id="qpsForm">
    <label>new QPS <input id="qpsInput" type="number" min="0" step="1" required></label>
    <label id="tokenLabel" hidden>token <input id="tokenInput" type="password"></label>
    <button type="submit">retarget</button>
    <span id="result"></span>
  </form>
</header>
<table id="agents"><thead><tr><th>agent</th><th>status</th><th>users</th><th>last sample</th></tr></thead><tbody></tbody></table>
<div class="grid" id="charts"></div>
<script src="/assets/chart.umd.js"></script>
<script>
const DEFS = ${chartDefsSource()};
const hb = (window.hb = { rows: new Map(), charts: {}, events: 0, ready: false });
const $ = (id) => document.getElementById(id);
for (const d of DEFS) {
  const card = document.createElement('div');
  card.className = 'card';
  const canvas = document.createElement('canvas');
  canvas.id = 'chart-' + d.name;
  card.appendChild(canvas);
  $('charts').appendChild(card);
  d.fns = d.lines.map((l) => new Function('return (' + l.fn + ')')());
  hb.charts[d.name] = new Chart(canvas, {
    type: 'line',
    data: { datasets: d.lines.map((l) => ({ label: l.label, data: [], borderColor: l.color, backgroundColor: l.color, borderWidth: 2, pointRadius: 0, stepped: l.stepped ? 'middle' : false, borderDash: l.dashed ? [6, 4] : undefined })) },
    options: { animation: false, responsive: true, maintainAspectRatio: false, plugins: { title: { display: true, text: d.title } },
      scales: { x: { type: 'linear', title: { display: true, text: 'seconds since run start' }, ticks: { precision: 0 } }, y: { beginAtZero: true, title: { display: true, text: d.yTitle } } } },
  });
}
let start = null;
let pending = false;
function redraw() {
  pending = false;
  const rows = [...hb.rows.values()].sort((a, b) => a.second - b.second);
  for (const d of DEFS) {
    const chart = hb.charts[d.name];
    d.fns.forEach((fn, i) => { chart.data.datasets[i].data = rows.map((r) => ({ x: r.second - start, y: fn(r) ?? null })); });
    chart.update('none');
  }
  hb.ready = true;
}
function schedule() { if (!pending) { pending = true; requestAnimationFrame(redraw); } }
function showAgents(list) {
  $('agentCount').textContent = list.length;
  $('agents').tBodies[0].innerHTML = list.map((a) => '<tr><td>' + a.id + '</td><td class="' + a.status + '">' + a.status + '</td><td>' +
    (a.users ? a.users.first + '+' + a.users.count : '') + '</td><td>' + (a.lastSampleSecond ?? '') + '</td></tr>').join('');
}
function showQps(q) { $('qps').textContent = q && q.qps !== null && q.qps !== undefined ? q.qps + (q.at ? ' (from ' + new Date(q.at * 1000).toISOString().slice(11, 19) + ')' : '') : '-'; }
const es = new EventSource('/events');
es.addEventListener('init', (e) => {
  const s = JSON.parse(e.data);
  hb.events++;
  $('run').textContent = s.run ? s.run.id : 'none';
  start = s.run ? s.run.startSecond : (s.rows[0] ? s.rows[0].second : 0);
  $('tokenLabel').hidden = !s.tokenRequired;
  showQps(s.qps);
  showAgents(s.agents);
  for (const r of s.rows) hb.rows.set(r.second, r);
  schedule();
});
es.addEventListener('row', (e) => { hb.events++; const r = JSON.parse(e.data); hb.rows.set(r.second, r); schedule(); });
es.addEventListener('agents', (e) => showAgents(JSON.parse(e.data)));
es.addEventListener('qps', (e) => { const c = JSON.parse(e.data); showQps({ qps: c.qps, at: c.at }); });
$('qpsForm').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const headers = { 'content-type': 'application/json' };
  const token = $('tokenInput').value;
  if (token) headers.authorization = 'Bearer ' + token;
  const res = await fetch('/qps', { method: 'POST', headers, body: JSON.stringify({ qps: Number($('qpsInput').value) }) });
  const body = await res.json();
  $('result').textContent = res.ok ? 'QPS ' + body.qps + ' from second ' + body.at + ': ' + body.agents.filter((a) => a.ok).length + '/' + body.agents.length + ' agents accepted' : 'error ' + res.status + ': ' + body.message;
});
</script>
</body>
</html>
`;
}
