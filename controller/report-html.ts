// The HTML of report.html: everything a reader needs without the charts is plain HTML (it reads
// even with scripts off); the charts are drawn by the inlined browser script from the inline data.
// With two runs (--compare) each section shows A and B side by side.
import { phaseTable } from '../common/summary-format.ts';
import type { ReportRun } from './report.ts';
import { findingsOf } from './report-problems.ts';
import type { ReportData } from './web/client.ts';

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => ESC[c]);

function table(head: string[], rows: string[][], cls = ''): string {
  const th = head.map((h) => `<th>${esc(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n');
  return `<table class="${cls}"><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const kv = (pairs: Array<[string, string]>) => `<table class="kv"><tbody>${pairs.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join('')}</tbody></table>`;

function when(iso: string | null | undefined): string {
  return iso ? esc(iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC')) : '-';
}

function duration(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h ? `${h} h ` : ''}${h || m ? `${m} min ` : ''}${s % 60} s`;
}

function aboutRun(run: ReportRun): string {
  const m = run.meta;
  if (!m) return `<p>run.json is missing: ${run.rows.length} seconds recorded.</p>`;
  const { command, note, ...settings } = m.config as Record<string, unknown>;
  const seconds = run.rows.length;
  const machine = m.machine;
  const agentHosts = new Map<string, number>();
  for (const a of Object.values(m.agents)) {
    const host = URL.canParse(String(a.controlUrl)) ? new URL(String(a.controlUrl)).hostname : '?';
    agentHosts.set(host, (agentHosts.get(host) ?? 0) + 1);
  }
  const pairs: Array<[string, string]> = [
    ['run', `<b>${esc(m.id)}</b>`],
    ['started', when(m.startedAt)],
    ['ended', m.stoppedAt ? `${when(m.stoppedAt)} (${duration(Math.round((Date.parse(m.stoppedAt) - Date.parse(m.startedAt)) / 1000))})` : '<b>not ended</b>'],
    ['seconds recorded', String(seconds)],
  ];
  if (note) pairs.push(['note', esc(note)]);
  if (command) pairs.push(['command', `<code>${esc(command)}</code>`]);
  pairs.push(['settings', Object.entries(settings).map(([k, v]) => `<code>${esc(k)}=${esc(typeof v === 'object' ? JSON.stringify(v) : v)}</code>`).join(' ')]);
  if (machine) pairs.push(['controller machine', esc(`${machine.hostname}: ${machine.os}, ${machine.cpus} x ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}`)]);
  if (settings.stub) pairs.push(['server (stub)', esc(settings.stub)]);
  if (agentHosts.size) pairs.push(['agent hosts', [...agentHosts].map(([h, n]) => `${esc(h)} (${n} agent${n === 1 ? '' : 's'})`).join(', ')]);
  return kv(pairs);
}

function agentsTable(run: ReportRun): string {
  const start = run.meta?.startSecond ?? run.rows[0]?.second ?? 0;
  const fromMeta = run.meta?.agents ?? {};
  const ids = new Set<string>(Object.keys(fromMeta));
  for (const r of run.rows) for (const id of Object.keys(r.agents)) ids.add(id);
  if (!ids.size) return '<p>No agent registered.</p>';
  const missing = new Map<string, number>();
  for (const r of run.rows) for (const id of r.missingAgents) missing.set(id, (missing.get(id) ?? 0) + 1);
  const rows = [...ids].sort().map((id) => {
    const a = (fromMeta[id] ?? {}) as Record<string, any>;
    const users = a.users ? `${a.users.first}-${a.users.first + a.users.count - 1} (${a.users.count})` : '';
    const ips = Array.isArray(a.sourceAddresses) && a.sourceAddresses.length ? a.sourceAddresses.join(', ') : typeof a.sourceIps === 'number' ? (a.sourceIps ? `${a.sourceIps} addresses` : 'default route') : '';
    const status = a.lost ? 'lost' : a.samples > 0 ? 'active' : fromMeta[id] ? 'registered' : 'not registered';
    const miss = missing.get(id) ?? 0;
    return [
      esc(id),
      esc(a.controlUrl ?? ''),
      esc(users),
      esc(ips),
      esc(a.workers ?? ''),
      `<span class="${status === 'active' ? 'ok' : 'bad'}">${status}</span>`,
      esc(a.samples ?? ''),
      miss ? `<span class="bad">${miss}</span>` : '0',
      typeof a.registeredSecond === 'number' ? String(a.registeredSecond - start) : '',
    ];
  });
  return table(['agent', 'control URL', 'users', 'source IPs', 'workers', 'status', 'samples', 'seconds missing', 'registered at second'], rows);
}

function qpsTable(run: ReportRun): string {
  const changes = run.meta?.qpsChanges ?? [];
  if (!changes.length) return '<p>No QPS change.</p>';
  const start = run.meta!.startSecond;
  const rows = changes.map((c, i) => {
    const refused = c.agents.filter((a) => !a.ok);
    return [
      String(i + 1),
      `<b>${c.qps}</b>`,
      String(c.at),
      String(c.at - start),
      esc(new Date(c.at * 1000).toISOString().slice(11, 19)),
      `${c.agents.length - refused.length}/${c.agents.length}` + (refused.length ? ` <span class="bad">${esc(refused.map((a) => `${a.id}: ${a.error ?? ''}`).join('; '))}</span>` : ''),
    ];
  });
  return table(['#', 'QPS', 'at (epoch s)', 'at (second of the run)', 'at (UTC)', 'agents that took it'], rows);
}

function phasesTable(run: ReportRun): string {
  const [head, ...rows] = phaseTable(run.summary.phases);
  return table(head, rows.map((r) => r.map(esc)), 'phases');
}

function auditPart(run: ReportRun): string {
  const a = run.audit;
  if (!a) return `<p>${run.meta?.stoppedAt ? 'No audit recorded (no stub, or an older controller).' : 'The audit is read from the stub when the run ends.'}</p>`;
  if (a.error) return `<p class="bad">${esc(a.url)} at ${when(a.at)}: ${esc(a.error)}</p>`;
  const parts = Object.entries(a.audit ?? {}).map(([name, fields]) => {
    if (!fields || typeof fields !== 'object') return kv([[name, esc(fields)]]);
    const ok = fields.reconciles;
    const pairs = Object.entries(fields)
      .filter(([k]) => k !== 'reconciles')
      .map(([k, v]): [string, string] => [k, esc(typeof v === 'object' && v !== null ? JSON.stringify(v) : v)]);
    return `<div><h3>${esc(name)} ${ok === true ? '<span class="ok">reconciles</span>' : ok === false ? '<span class="bad">does not reconcile</span>' : ''}</h3>${kv(pairs)}</div>`;
  });
  return `<p>${esc(a.url)} at ${when(a.at)}</p><div class="pair">${parts.join('')}</div>`;
}

function findingsPart(run: ReportRun): string {
  const { problems, notes } = findingsOf(run);
  const items = [...problems.map((p) => `<li class="bad">${esc(p)}</li>`), ...notes.map((n) => `<li>${esc(n)}</li>`)];
  const head = problems.length ? `<p class="bad"><b>${problems.length} problem${problems.length === 1 ? '' : 's'}</b></p>` : '<p class="ok"><b>Nothing went wrong</b>: no lost agents, no missed seconds, no errors.</p>';
  return `${head}${items.length ? `<ul>${items.join('')}</ul>` : ''}`;
}

const STYLE = `
body { font: 14px system-ui, sans-serif; margin: 16px 24px; color: #222; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 17px; margin: 24px 0 6px; border-bottom: 1px solid #ddd; } h3 { font-size: 14px; margin: 8px 0 4px; }
table { border-collapse: collapse; margin: 4px 0; } td, th { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
table.phases td:not(:first-child), table.phases th:not(:first-child) { text-align: right; font-variant-numeric: tabular-nums; }
table.phases th { max-width: 64px; vertical-align: bottom; } table.phases td { white-space: nowrap; }
table.phases td, table.phases th { padding: 2px 5px; font-size: 13px; }
table.kv th { color: #555; font-weight: normal; white-space: nowrap; }
code { font-size: 12px; } .ok { color: #1a7f37; } .bad { color: #c00; }
.pair { display: flex; flex-wrap: wrap; gap: 32px; align-items: flex-start; } .pair > div { min-width: 0; }
.pair.side { flex-wrap: nowrap; overflow-x: auto; } .pair.side > div { flex: none; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 16px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px; }
.hint { color: #666; font-size: 12px; } footer { color: #888; font-size: 12px; margin-top: 24px; }
`;

/** The page: the runs' sections (side by side when two), the inline data, the inline script. */
export function reportPage(runs: ReportRun[], data: ReportData, script: string): string {
  const two = runs.length > 1;
  const label = (i: number) => (two ? `${i ? 'B' : 'A'}: ${runs[i].id}` : '');
  /** A section; with two runs, A's and B's parts next to each other (`side`: always, else as the width allows). */
  const section = (id: string, title: string, body: (r: ReportRun) => string, side = false) =>
    `<section id="${id}"><h2>${esc(title)}</h2>${two ? `<div class="pair${side ? ' side' : ''}">${runs.map((r, i) => `<div><h3>${esc(label(i))}</h3>${body(r)}</div>`).join('')}</div>` : body(runs[0])}</section>`;
  const title = two ? `Runs ${runs[0].id} (A) and ${runs[1].id} (B)` : `Run ${runs[0].id}`;
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hongbao-fleet: ${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>hongbao-fleet: ${esc(title)}</h1>
${section('problems', 'What went wrong', findingsPart)}
${section('about', 'Run', aboutRun)}
${section('agents', 'Agents', agentsTable)}
${section('qps', 'QPS changes', qpsTable, true)}
${section('phases', 'Phases (as in summary.txt)', phasesTable, true)}
<section id="charts-section"><h2>Charts</h2>
<p class="hint">Hover to read every line at a second; drag across a chart to zoom all charts into those seconds; double-click to zoom out. Showing <span id="range">the whole run</span> <button id="reset" hidden>show the whole run</button>${two ? '. Run B is drawn dotted.' : ''}</p>
<noscript><p class="bad">The charts need JavaScript.</p></noscript>
<div class="grid" id="charts"></div>
</section>
${section('audit', 'Audit (the stub\'s GET /audit when the run ended)', auditPart)}
<footer>written by hongbao at ${esc(new Date().toISOString())}; opens from disk, needs no network.</footer>
<script type="application/json" id="hb-data">${json}</script>
<script>${script}</script>
<script>HB.report();</script>
</body>
</html>
`;
}
