// One timeline keyed by epoch second: the target QPS, every agent's sample, their sum, merged
// latency, and the stub's counters. A second is written once it has settled; data that comes in
// later for a written second re-writes it as an amended line (readers keep the last line of a second).
import { AGENT_SECOND_FIELDS, STUB_SECOND_FIELDS } from '../common/fields.ts';
import { Histogram } from '../common/histogram.ts';

export const CLIENT_FIELDS = [...AGENT_SECOND_FIELDS, 'connections'] as const;
export const SERVER_FIELDS = ['connections', ...STUB_SECOND_FIELDS] as const;

export type ClientCounts = { [K in (typeof CLIENT_FIELDS)[number]]: number };
export type ServerCounts = { [K in (typeof SERVER_FIELDS)[number]]: number };
export interface Latency {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface AgentSample extends Partial<ClientCounts> {
  second: number;
  qps?: number;
  p50Ms?: number;
  p99Ms?: number;
  maxMs?: number;
  /** p99 of actual send - scheduled send. */
  lateP99Ms?: number;
  offsetMs?: number;
  uncertaintyMs?: number;
  /** Encoded latency histogram in microseconds (common/histogram.ts). */
  hist?: string;
}

/** One line of series.ndjson. */
export interface Row {
  second: number;
  /** Seconds since the run started. */
  t: number;
  targetQps: number | null;
  /** Latency merged over agents; lateP99Ms is the largest agent's p99 send lateness (not a merged percentile). */
  client: ClientCounts & Latency & { lateP99Ms: number };
  agents: Record<string, ClientCounts & { p50Ms: number; p99Ms: number; maxMs: number; lateP99Ms: number; qps: number | null }>;
  /** Agents expected but without a sample for this second. */
  missingAgents: string[];
  server: ServerCounts | null;
  /** Merged latency histogram (us), so phases can be summarised from disk. */
  hist: string;
  amended?: boolean;
}

interface Slot {
  agents: Map<string, AgentSample>;
  /** Each agent's latency histogram, decoded once when its sample came in. */
  hists: Map<string, Histogram>;
  server: ServerCounts | undefined;
  written: boolean;
  dirty: boolean;
}

const zeroClient = (): ClientCounts => Object.fromEntries(CLIENT_FIELDS.map((f) => [f, 0])) as ClientCounts;
const ms = (us: number) => Math.round(us) / 1000;

export class Timeline {
  private readonly slots = new Map<number, Slot>();
  /** Next second not yet written. */
  private cursor: number;

  constructor(
    readonly startSecond: number,
    /** Fleet target QPS in effect in a second (from the controller's QPS history), or null. */
    private readonly targetAt: (second: number) => number | null,
    /** Agents expected to report in a second. */
    private readonly expectedAgents: (second: number) => string[],
    /** First second to write: a resumed run's earlier seconds are on disk already and stay as they are. */
    private readonly firstSecond = startSecond,
  ) {
    this.cursor = firstSecond;
  }

  /** First second not written yet. */
  get next(): number {
    return this.cursor;
  }

  private slot(second: number): Slot {
    let s = this.slots.get(second);
    if (!s) {
      s = { agents: new Map(), hists: new Map(), server: undefined, written: false, dirty: false };
      this.slots.set(second, s);
    }
    return s;
  }

  /**
   * An agent's sample with its decoded latency histogram; lands in its own second however late it
   * comes. False when before the run (or before a resumed run's first second of this process).
   */
  addSample(agent: string, sample: AgentSample, hist: Histogram | undefined): boolean {
    if (sample.second < this.firstSecond) return false;
    const s = this.slot(sample.second);
    s.agents.set(agent, sample);
    if (hist) s.hists.set(agent, hist);
    else s.hists.delete(agent);
    if (s.written) s.dirty = true;
    return true;
  }

  addServer(second: number, counts: ServerCounts): void {
    if (second < this.firstSecond) return;
    const s = this.slot(second);
    s.server = counts;
    if (s.written) s.dirty = true;
  }

  /** Rows ready to append: every second up to `settledUpTo` not written yet, then amended ones. */
  take(settledUpTo: number): Row[] {
    const out: Row[] = [];
    for (const [second, s] of this.slots) {
      if (s.written && s.dirty) {
        s.dirty = false;
        out.push({ ...this.row(second, s), amended: true });
      }
    }
    for (; this.cursor <= settledUpTo; this.cursor++) {
      const s = this.slot(this.cursor);
      s.written = true;
      s.dirty = false;
      out.push(this.row(this.cursor, s));
    }
    return out.sort((a, b) => a.second - b.second);
  }

  /** Whether every second not yet written up to `last` has every expected agent's sample (and the stub's counters when `withServer`). */
  complete(last: number, withServer: boolean): boolean {
    for (let second = this.cursor; second <= last; second++) {
      const s = this.slots.get(second);
      if (!s || (withServer && !s.server)) return false;
      if (this.expectedAgents(second).some((id) => !s.agents.has(id))) return false;
    }
    return true;
  }

  row(second: number, s: Slot = this.slot(second)): Row {
    const client = zeroClient();
    const hist = new Histogram();
    const agents: Row['agents'] = {};
    let agentQps: number | null = null;
    let lateP99Ms = 0;
    for (const [id, a] of s.agents) {
      const counts = zeroClient();
      for (const f of CLIENT_FIELDS) {
        const v = a[f] ?? 0;
        counts[f] = v;
        client[f] += v;
      }
      const h = s.hists.get(id);
      if (h) hist.merge(h);
      if (typeof a.qps === 'number') agentQps = Math.max(agentQps ?? 0, a.qps);
      agents[id] = { ...counts, p50Ms: a.p50Ms ?? 0, p99Ms: a.p99Ms ?? 0, maxMs: a.maxMs ?? 0, lateP99Ms: a.lateP99Ms ?? 0, qps: a.qps ?? null };
      if ((a.lateP99Ms ?? 0) > lateP99Ms) lateP99Ms = a.lateP99Ms ?? 0;
    }
    const expected = this.expectedAgents(second);
    const target = this.targetAt(second) ?? agentQps;
    return {
      second,
      t: second - this.startSecond,
      targetQps: target,
      client: { ...client, p50Ms: ms(hist.percentile(50)), p90Ms: ms(hist.percentile(90)), p99Ms: ms(hist.percentile(99)), maxMs: ms(hist.max), lateP99Ms },
      agents,
      missingAgents: expected.filter((id) => !s.agents.has(id)),
      server: s.server ?? null,
      hist: hist.total ? hist.encode() : '',
    };
  }
}
