// GET / : the live dashboard. The six charts of the PNGs and report.html (same definitions and
// browser script: controller/web/client.ts, served as /assets/charts.js), fed by server-sent events
// (/events); the agents with the age of their last sample; the runs with their reports; a form to
// retarget QPS.

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
  h2 { font-size: 15px; margin: 16px 0 4px; }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 16px; margin-top: 16px; }
  .card { border: 1px solid #ddd; border-radius: 6px; padding: 8px; }
  form { display: flex; gap: 8px; align-items: center; }
  input { width: 110px; }
  #result { font-family: monospace; }
  table { border-collapse: collapse; }
  td, th { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: left; }
  .lost { color: #c00; font-weight: bold; }
  .tables { display: flex; flex-wrap: wrap; gap: 32px; }
  .hint { color: #666; font-size: 12px; }
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
<div class="tables">
  <section><h2>agents</h2>
  <table id="agents"><thead><tr><th>agent</th><th>status</th><th>users</th><th>last sample</th></tr></thead><tbody></tbody></table></section>
  <section><h2>runs</h2>
  <table id="runs"><thead><tr><th>run</th><th>started (UTC)</th><th>stopped (UTC)</th><th>report</th></tr></thead><tbody></tbody></table></section>
</div>
<div class="hint">drag across a chart to zoom into those seconds, double-click to see the whole run; hover to read a second</div>
<div class="grid" id="charts"></div>
<script src="/assets/charts.js"></script>
<script>
const hb = (window.hb = { rows: new Map(), charts: {}, events: 0, ready: false });
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
let group = null;
let start = null;
let history = [];
let pending = false;
function redraw() {
  pending = false;
  const rows = [...hb.rows.values()].sort((a, b) => a.second - b.second);
  group.markers.length = 0;
  for (const c of history) group.markers.push({ x: c.at - start, label: c.qps + ' QPS' });
  group.setRuns([HB.columnsOf(rows, start)]);
  hb.ready = true;
}
function schedule() { if (!pending && group) { pending = true; requestAnimationFrame(redraw); } }
// The age of each agent's last sample, counted on in the browser between the controller's updates.
let agents = { list: [], at: 0 };
function ago(s) {
  if (s === null || s === undefined) return 'never';
  if (s < 120) return Math.max(0, Math.round(s)) + ' s ago';
  if (s < 7200) return Math.round(s / 60) + ' min ago';
  return Math.round(s / 3600) + ' h ago';
}
function showAgents() {
  const since = (Date.now() - agents.at) / 1000;
  $('agentCount').textContent = agents.list.length;
  $('agents').tBodies[0].innerHTML = agents.list.map((a) => '<tr><td>' + esc(a.id) + '</td><td class="' + a.status + '">' + a.status + '</td><td>' +
    (a.users ? a.users.first + '+' + a.users.count : '') + '</td><td class="age">' + ago(a.lastSampleAgoS === null ? null : a.lastSampleAgoS + since) + '</td></tr>').join('');
}
function setAgents(list) { agents = { list, at: Date.now() }; showAgents(); }
setInterval(showAgents, 1000);
const hms = (iso) => (iso ? iso.slice(0, 19).replace('T', ' ') : '');
async function showRuns() {
  try {
    const { runs } = await (await fetch('/runs')).json();
    $('runs').tBodies[0].innerHTML = runs.slice().reverse().map((r) => '<tr><td>' + esc(r.id) + (r.current ? ' (current)' : '') + '</td><td>' + hms(r.startedAt) + '</td><td>' +
      (r.stoppedAt ? hms(r.stoppedAt) : r.current ? 'running' : '-') + '</td><td>' + (r.report ? '<a href="/runs/' + encodeURIComponent(r.id) + '/report.html">report.html</a>' : '-') + '</td></tr>').join('');
  } catch {
    // the controller is away: keep the list shown
  }
}
setInterval(showRuns, 10000);
function showQps(q) { $('qps').textContent = q && q.qps !== null && q.qps !== undefined ? q.qps + (q.at ? ' (from ' + new Date(q.at * 1000).toISOString().slice(11, 19) + ')' : '') : '-'; }
const es = new EventSource('/events');
es.addEventListener('init', (e) => {
  const s = JSON.parse(e.data);
  hb.events++;
  $('run').textContent = s.run ? s.run.id : 'none';
  start = s.run ? s.run.startSecond : (s.rows[0] ? s.rows[0].second : 0);
  if (!group) {
    group = HB.mountCharts($('charts'), { xTitle: 'seconds since run start', zero: start, height: 260 });
    hb.charts = group.charts;
  }
  history = s.history;
  $('tokenLabel').hidden = !s.tokenRequired;
  showQps(s.qps);
  setAgents(s.agents);
  void showRuns();
  for (const r of s.rows) hb.rows.set(r.second, r);
  schedule();
});
es.addEventListener('row', (e) => { hb.events++; const r = JSON.parse(e.data); hb.rows.set(r.second, r); schedule(); });
es.addEventListener('agents', (e) => setAgents(JSON.parse(e.data)));
es.addEventListener('qps', (e) => { const c = JSON.parse(e.data); history.push(c); showQps({ qps: c.qps, at: c.at }); schedule(); });
es.addEventListener('stopped', () => void showRuns());
es.addEventListener('report', () => void showRuns());
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
