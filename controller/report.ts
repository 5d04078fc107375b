// report.html: one self-contained file per run (data, script and styles inline; no network, no
// server) with the run's facts, what went wrong, the phase table of summary.txt, the six charts
// (interactive) and the stub's audit. `hongbao chart A --compare B` writes the same page with two
// runs overlaid. The data is inlined in columns (one array per line, chart-defs.ts), so a 1-hour
// run stays small.
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { columnsOf } from './chart-defs.ts';
import { writeAtomic } from './files.ts';
import { reportPage } from './report-html.ts';
import type { AuditRecord, RunMeta } from './run.ts';
import { latestRows, summarize, type Summary } from './summary.ts';
import type { Row } from './timeline.ts';
import type { ReportData } from './web/client.ts';
import { chartsScript } from './web/script.ts';

export const REPORT_FILE = 'report.html';

/** What the report shows of one run. */
export interface ReportRun {
  id: string;
  dir: string;
  meta: RunMeta | null;
  /** One row per second, in order (amended lines applied). */
  rows: Row[];
  summary: Summary;
  audit: AuditRecord | null;
}

function readJson<T>(path: string): T | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null; // being rewritten, or torn by a crash: the report says what it lacks
  }
}

/** A run folder's files (run.json, audit.json) with its series rows; the summary from the same code as summary.json. */
export function loadReportRun(dir: string, rows: Row[]): ReportRun {
  const meta = readJson<RunMeta>(join(dir, 'run.json'));
  const id = meta?.id ?? basename(dir);
  const latest = latestRows(rows);
  return { id, dir, meta, rows: latest, summary: summarize(id, latest), audit: readJson<AuditRecord>(join(dir, 'audit.json')) };
}

/** Epoch second of the run's x = 0: its start. */
function startOf(run: ReportRun): number {
  return run.meta?.startSecond ?? run.rows[0]?.second ?? 0;
}

/** Epoch second the load began: the first change to a QPS above 0 (else the first second with a target, else the start). */
export function loadStartOf(run: ReportRun): number {
  const change = run.meta?.qpsChanges.find((c) => c.qps > 0);
  return change?.at ?? run.rows.find((r) => (r.targetQps ?? 0) > 0)?.second ?? startOf(run);
}

const utc = (second: number) => new Date(second * 1000).toISOString().slice(11, 19);

/** The inline data of the charts. One run: x from its start. Two: x from each run's load start, so the phases line up. */
export function reportData(runs: ReportRun[]): ReportData {
  const zeros = runs.length > 1 ? runs.map(loadStartOf) : runs.map(startOf);
  const xTitle =
    runs.length > 1
      ? `seconds since the first QPS change (A ${utc(zeros[0])}, B ${utc(zeros[1])} UTC)`
      : `seconds since run start (${utc(zeros[0])} UTC)`;
  return {
    xTitle,
    zero: runs.length > 1 ? null : zeros[0],
    runs: runs.map((run, i) => ({
      id: run.id,
      ...columnsOf(run.rows, zeros[i]),
      markers: (run.meta?.qpsChanges ?? []).map((c) => ({ x: c.at - zeros[i], label: `${c.qps} QPS` })),
    })),
  };
}

/** The whole page for one run, or two overlaid (A first). */
export function reportHtml(runs: ReportRun[]): string {
  return reportPage(runs, reportData(runs), chartsScript());
}

/** Writes DIR/report.html from the run's files and `rows` (its series.ndjson); returns the path. */
export function writeReport(dir: string, rows: Row[]): string {
  const path = join(dir, REPORT_FILE);
  writeAtomic(path, reportHtml([loadReportRun(dir, rows)]));
  return path;
}
