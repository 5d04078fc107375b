// A run on disk: results/<YYYYMMDD-HHMMSS>/ with run.json (config, machine, agents, QPS changes;
// rewritten atomically when they change), series.ndjson (one line per second, appended as it
// happens, so a crash loses at most the second in flight), charts/*.png and report.html (rewritten
// while the run lasts) and, at the end, summary.json and audit.json (the stub's /audit). A run a
// controller left open (it died) is opened again by the next one (Run.open).
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { arch, cpus, hostname, release, totalmem, type } from 'node:os';
import { join } from 'node:path';
import { renderCharts } from './charts.ts';
import { writeAtomic } from './files.ts';
import { writeReport } from './report.ts';
import { summarize, type Summary } from './summary.ts';
import type { Row } from './timeline.ts';
import type { QpsChange } from '../common/schedule.ts';

/** A fleet QPS change as the run records it: when it was asked for and what each agent answered. */
export interface QpsChangeRecord extends QpsChange {
  requestedAt: number;
  agents: Array<{ id: string; ok: boolean; error?: string }>;
  /** Set when the controller did not make this change but learned it from an agent (after a restart). */
  learnedFrom?: string;
}

/** A controller that took the run over after the previous one stopped without closing it. */
export interface RunResume {
  at: string;
  /** First second this controller writes; the ones before it were on disk already. */
  fromSecond: number;
  pid: number;
  /** The restarted controller's own settings (host, port...). */
  config: Record<string, unknown>;
}

/** The machine the controller ran on. */
export interface Machine {
  hostname: string;
  os: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
}

export function thisMachine(): Machine {
  const c = cpus();
  return {
    hostname: hostname(),
    os: `${type()} ${release()} ${arch()}`,
    cpus: c.length,
    cpuModel: c[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
  };
}

/** audit.json: the stub's GET /audit when the run stopped, or why it could not be had. */
export interface AuditRecord {
  at: string;
  url: string;
  audit?: Record<string, Record<string, unknown>>;
  error?: string;
}

export interface RunMeta {
  id: string;
  startedAt: string;
  startSecond: number;
  stoppedAt: string | null;
  /** The controller's settings; `command` is its command line (token hidden), `note` what --note said. */
  config: Record<string, unknown>;
  machine?: Machine;
  agents: Record<string, Record<string, unknown>>;
  qpsChanges: QpsChangeRecord[];
  resumes?: RunResume[];
}

/** Folder name of a run started at `ms`: YYYYMMDD-HHMMSS (UTC). */
export function runIdAt(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
}

export class Run {
  readonly id: string;
  readonly dir: string;
  readonly meta: RunMeta;
  readonly rows: Row[];
  private readonly series: string;

  private constructor(dir: string, meta: RunMeta, rows: Row[]) {
    this.id = meta.id;
    this.dir = dir;
    this.meta = meta;
    this.series = join(dir, 'series.ndjson');
    this.rows = rows;
  }

  /** A new run folder under `resultsDir`, named after `startMs`. */
  static create(resultsDir: string, startMs: number, config: Record<string, unknown>): Run {
    let id = runIdAt(startMs);
    for (let n = 2; existsSync(join(resultsDir, id)); n++) id = `${runIdAt(startMs)}-${n}`;
    const dir = join(resultsDir, id);
    mkdirSync(join(dir, 'charts'), { recursive: true });
    writeFileSync(join(dir, 'series.ndjson'), '');
    const run = new Run(dir, { id, startedAt: new Date(startMs).toISOString(), startSecond: Math.floor(startMs / 1000), stoppedAt: null, config, machine: thisMachine(), agents: {}, qpsChanges: [] }, []);
    run.saveMeta();
    return run;
  }

  /**
   * An existing run folder as a previous controller left it: its meta and the seconds on disk. A
   * torn last line (that controller died mid-write) is cut off so that new lines start clean.
   */
  static open(dir: string): Run {
    const meta = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunMeta;
    const series = join(dir, 'series.ndjson');
    if (!existsSync(series)) writeFileSync(series, '');
    const text = readFileSync(series);
    const end = text.lastIndexOf(0x0a) + 1;
    if (end < text.length) truncateSync(series, end);
    mkdirSync(join(dir, 'charts'), { recursive: true });
    return new Run(dir, meta, readSeries(dir));
  }

  /** The last second written to series.ndjson (startSecond - 1 when none). */
  lastSecond(): number {
    let last = this.meta.startSecond - 1;
    for (const r of this.rows) if (r.second > last) last = r.second;
    return last;
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

  /** Writes report.html, then the PNGs; returns the PNG paths. */
  async charts(): Promise<string[]> {
    writeReport(this.dir, this.rows);
    return renderCharts(this.dir, this.id, this.rows);
  }

  saveAudit(record: AuditRecord): void {
    writeAtomic(join(this.dir, 'audit.json'), JSON.stringify(record, null, 2) + '\n');
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

/** The newest run folder under `resultsDir` whose run.json says it never stopped, if any. */
export function findOpenRun(resultsDir: string): string | undefined {
  if (!existsSync(resultsDir)) return undefined;
  const names = readdirSync(resultsDir).filter((n) => /^[0-9]{8}-[0-9]{6}(-[0-9]+)?$/.test(n)).sort();
  for (let i = names.length - 1; i >= 0; i--) {
    const meta = join(resultsDir, names[i], 'run.json');
    if (!existsSync(meta)) continue;
    try {
      if ((JSON.parse(readFileSync(meta, 'utf8')) as RunMeta).stoppedAt === null) return join(resultsDir, names[i]);
    } catch {
      // unreadable: not a run to continue
    }
    return undefined; // only the newest run can be the open one
  }
  return undefined;
}
