// What went wrong in a run, in sentences, for the top of report.html: lost agents, seconds an agent
// sent no sample, shakes missed or unanswered, overload and errors, seconds without the stub's
// counters, QPS changes an agent refused, an audit that does not reconcile or could not be had.
import type { ReportRun } from './report.ts';
import type { Row } from './timeline.ts';

/** "3-7, 12, 20-21": seconds (since the run start) as spans, the first `max` of them. */
export function spans(ts: readonly number[], max = 6): string {
  const out: string[] = [];
  let i = 0;
  while (i < ts.length && out.length < max) {
    let j = i;
    while (j + 1 < ts.length && ts[j + 1] === ts[j] + 1) j++;
    out.push(i === j ? String(ts[i]) : `${ts[i]}-${ts[j]}`);
    i = j + 1;
  }
  return out.join(', ') + (i < ts.length ? ', ...' : '');
}

const plural = (n: number, one: string, many = one + 's') => `${n} ${n === 1 ? one : many}`;

export interface Findings {
  /** Things that went wrong. Empty: nothing did. */
  problems: string[];
  /** Facts a reader should know that are not faults (a run still in progress). */
  notes: string[];
}

export function findingsOf(run: ReportRun): Findings {
  const { rows, meta } = run;
  const start = meta?.startSecond ?? rows[0]?.second ?? 0;
  const t = (r: Row) => r.second - start;
  const problems: string[] = [];
  const notes: string[] = [];

  for (const [id, a] of Object.entries(meta?.agents ?? {})) {
    if (a.lost === true) {
      const at = typeof a.lostAtSecond === 'number' ? ` from second ${a.lostAtSecond - start}` : '';
      problems.push(`agent ${id} was lost: no samples${at} on`);
    }
  }
  const missing = new Map<string, number[]>();
  for (const r of rows) for (const id of r.missingAgents) missing.set(id, [...(missing.get(id) ?? []), t(r)]);
  for (const [id, ts] of missing) problems.push(`agent ${id} sent no sample for ${plural(ts.length, 'second')} (seconds ${spans(ts)})`);

  const where = (pick: (r: Row) => number) => {
    const hit = rows.filter((r) => pick(r) > 0);
    return { total: hit.reduce((n, r) => n + pick(r), 0), seconds: hit.map(t) };
  };
  const missed = where((r) => r.client.missed);
  if (missed.total) problems.push(`${plural(missed.total, 'shake')} missed (not sent in their second) in ${plural(missed.seconds.length, 'second')}: ${spans(missed.seconds)}`);
  const unanswered = where((r) => Math.max(0, r.client.sent - r.client.answered));
  if (unanswered.total) problems.push(`${plural(unanswered.total, 'shake')} sent but not answered, in ${plural(unanswered.seconds.length, 'second')}: ${spans(unanswered.seconds)}`);
  const overload = where((r) => r.client.overload);
  if (overload.total) problems.push(`${plural(overload.total, 'shake')} answered "overload" by the server, in seconds ${spans(overload.seconds)}`);
  const clientErrors = where((r) => r.client.errors);
  if (clientErrors.total) problems.push(`${plural(clientErrors.total, 'error')} at the agents, in seconds ${spans(clientErrors.seconds)}`);
  const serverErrors = where((r) => r.server?.errors ?? 0);
  if (serverErrors.total) problems.push(`${plural(serverErrors.total, 'error')} counted by the server, in seconds ${spans(serverErrors.seconds)}`);
  if (meta?.config.stub) {
    const blind = rows.filter((r) => r.server === null).map(t);
    if (blind.length) problems.push(`no counters from the stub for ${plural(blind.length, 'second')} (seconds ${spans(blind)})`);
  }

  for (const c of meta?.qpsChanges ?? []) {
    const refused = c.agents.filter((a) => !a.ok);
    if (refused.length) problems.push(`QPS ${c.qps} from second ${c.at - start}: ${refused.map((a) => `${a.id} did not take it (${a.error ?? 'no reason given'})`).join('; ')}`);
  }

  const audit = run.audit;
  if (audit?.error) problems.push(`the stub's audit could not be read: ${audit.error}`);
  for (const [part, a] of Object.entries(audit?.audit ?? {})) {
    if (a && typeof a === 'object' && a.reconciles === false) problems.push(`the stub's audit does not reconcile: ${part} ${JSON.stringify(a)}`);
  }

  if (!meta) notes.push('run.json is missing or unreadable: no agents, QPS changes or settings to show');
  else if (!meta.stoppedAt) notes.push(`the run has not ended (or its controller died without closing it): this report covers seconds 0-${rows.length ? t(rows[rows.length - 1]) : 0}`);
  if (meta?.stoppedAt && meta.config.stub && !audit) notes.push('no audit.json: the run was closed without reading the stub\'s audit');
  return { problems, notes };
}
