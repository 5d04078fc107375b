// A run on disk: results/<YYYYMMDD-HHMMSS>/ with run.json (config, agents, QPS changes; rewritten
// atomically when they change), series.ndjson (one line per second, appended as it happens, so a
// crash loses at most the second in flight), charts/*.png and, at the end, summary.json.
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderCharts } from './charts.ts';
import { summarize, type Summary } from './summary.ts';
import type { Row } from './timeline.ts';

export interface QpsChange {
  qps: number;
  at: number;
  requestedAt: number;
  agents: Array<{ id: string; ok: boolean; error?: string }>;
}

export interface RunMeta {
  id: string;
  startedAt: string;
  startSecond: number;
  stoppedAt: string | null;
  config: Record<string, unknown>;
  agents: Record<string, Record<string, unknown>>;
  qpsChanges: QpsChange[];
}

/** Folder name of a run started at `ms`: YYYYMMDD-HHMMSS (UTC). */
export function runIdAt(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
}

function writeAtomic(path: string, text: string): void {
  writeFileSync(path + '.tmp', text);
  renameSync(path + '.tmp', path);
}

export class Run {
  readonly id: string;
  readonly dir: string;
  readonly meta: RunMeta;
  readonly rows: Row[] = [];
  private readonly series: string;

  constructor(resultsDir: string, startMs: number, config: Record<string, unknown>) {
    let id = runIdAt(startMs);
    for (let n = 2; existsSync(join(resultsDir, id)); n++) id = `${runIdAt(startMs)}-${n}`;
    this.id = id;
    this.dir = join(resultsDir, id);
    mkdirSync(join(this.dir, 'charts'), { recursive: true });
    this.series = join(this.dir, 'series.ndjson');
    writeFileSync(this.series, '');
    this.meta = {
      id,
      startedAt: new Date(startMs).toISOString(),
      startSecond: Math.floor(startMs / 1000),
      stoppedAt: null,
      config,
      agents: {},
      qpsChanges: [],
    };
    this.saveMeta();
  }

  get stopped(): boolean {
    return this.meta.stoppedAt !== null;
  }

  saveMeta(): void {
    writeAtomic(join(this.dir, 'run.json'), JSON.stringify(this.meta, null, 2) + '\n');
  }

  append(rows: Row[]): void {
    if (rows.length === 0) return;
    appendFileSync(this.series, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    this.rows.push(...rows);
  }

  async charts(): Promise<string[]> {
    return renderCharts(this.dir, this.id, this.rows);
  }

  summary(): Summary {
    return summarize(this.id, this.rows);
  }

  /** Marks the run stopped and writes summary.json (the caller renders the charts one last time). */
  finish(stopMs: number): Summary {
    this.meta.stoppedAt = new Date(stopMs).toISOString();
    this.saveMeta();
    const summary = this.summary();
    writeAtomic(join(this.dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    return summary;
  }
}

/** Rows of a run folder's series.ndjson; a torn last line (crash mid-write) is skipped. */
export function readSeries(runDir: string): Row[] {
  const text = readFileSync(join(runDir, 'series.ndjson'), 'utf8');
  const rows: Row[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      rows.push(JSON.parse(line) as Row);
    } catch {
      // only the last line can be torn
    }
  }
  return rows;
}
