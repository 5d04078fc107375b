// The controller's state: the agent registry, the fleet QPS and its history, the current run with
// its timeline, the stub poller and the live-dashboard subscribers. Routes (app.ts) call into it;
// main.ts drives tick() once a second.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CodedError, HttpError } from '../common/errors.ts';
import { Histogram } from '../common/histogram.ts';
import { REPORT_FILE } from './report.ts';
import { Run, findOpenRun, type QpsChangeRecord } from './run.ts';
import { changeAt } from '../common/schedule.ts';
import { SERVER_FIELDS, Timeline, type AgentSample, type Row, type ServerCounts } from './timeline.ts';

export interface AgentRegistration {
  id: string;
  controlUrl: string;
  users?: { first: number; count: number };
  totalUsers?: number;
  workers?: number;
  sourceIps?: number;
  /** The --source-ip values as given (addresses or ranges). */
  sourceAddresses?: string[];
  rule?: string;
  mode?: string;
  pid?: number;
  /** The agent's QPS timeline (changes in effect and due): a restarted controller learns the fleet's QPS from it. */
  qpsChanges?: Array<{ at: number; qps: number }>;
}

/** Seconds an agent keeps for re-pushing (agent/stats.ts history): an open run older than that is closed, not continued. */
export const RESUME_WINDOW_SECONDS = 600;

export interface AgentEntry extends AgentRegistration {
  registeredAt: number;
  registeredSecond: number;
  lastSampleAt: number | null;
  lastSampleSecond: number | null;
  samples: number;
  lost: boolean;
  lostAtSecond: number | null;
}

export interface ControllerConfig {
  resultsDir: string;
  stubUrl?: string;
  token?: string;
  leadSeconds: number;
  lostAfterSeconds: number;
  chartEverySeconds: number;
  clock?: () => number;
  log?: (line: string) => void;
  /** Seconds after which a second is written even if data is missing (agents push second now-2). */
  settleSeconds?: number;
  /**
   * At most how long (real ms) stopping a run waits for the agents' and the stub's data of its last
   * seconds (agents push a second once it is over); 0: write what is there at once.
   */
  stopGraceMs?: number;
  /** Timeout of calls to agents and the stub. */
  callTimeoutMs?: number;
  /**
   * Renders a run's report.html and charts; returns the PNG paths. Default: in this process. The
   * CLI renders in a child process (`hongbao chart DIR`) so that drawing never stalls the QPS fan-out.
   */
  renderCharts?: (run: Run) => Promise<string[]>;
}

export interface Subscriber {
  send(event: string, data: unknown): void;
}

export class Controller {
  readonly agents = new Map<string, AgentEntry>();
  readonly qpsHistory: QpsChangeRecord[] = [];
  run: Run | undefined;
  private timeline: Timeline | undefined;
  readonly subscribers = new Set<Subscriber>();
  private readonly clock: () => number;
  private readonly log: (line: string) => void;
  private stubNext = 0;
  stubError: string | null = null;
  private polling = false;
  private charting: Promise<unknown> | undefined;
  private lastChartAt = 0;
  /** Agents of a continued run that have not registered again since this controller started. */
  readonly pending = new Map<string, AgentEntry>();
  /** While set (a continued run), nothing is written until the agents have re-pushed or are lost. */
  private resumedAt: number | undefined;

  constructor(readonly config: ControllerConfig) {
    this.clock = config.clock ?? Date.now;
    this.log = config.log ?? (() => undefined);
  }

  nowSecond(): number {
    return Math.floor(this.clock() / 1000);
  }

  // ---- runs -----------------------------------------------------------------------------------

  startRun(config: Record<string, unknown> = {}): Run {
    const run = Run.create(this.config.resultsDir, this.clock(), { ...config, stub: this.config.stubUrl ?? null, leadSeconds: this.config.leadSeconds });
    this.run = run;
    this.timeline = new Timeline(
      run.meta.startSecond,
      (s) => this.targetAt(s),
      (s) => this.expectedAt(s),
    );
    this.stubNext = run.meta.startSecond;
    for (const a of this.agents.values()) run.meta.agents[a.id] = { ...a };
    run.saveMeta();
    this.log(`hongbao controller: run ${run.id} started in ${run.dir}`);
    return run;
  }

  /**
   * On start: continues the run a previous controller left open on this results directory (it
   * died or was killed), or closes it when it is too old to continue (its agents no longer hold the
   * seconds in between), then starts a new one. Says which on the log.
   */
  async continueOrStartRun(config: Record<string, unknown> = {}): Promise<{ run: Run; continued: boolean; closed?: string }> {
    const dir = findOpenRun(this.config.resultsDir);
    let closed: string | undefined;
    if (dir) {
      const open = Run.open(dir);
      const last = open.lastSecond();
      const gap = this.nowSecond() - last;
      if (gap <= RESUME_WINDOW_SECONDS) return { run: this.resume(open, config), continued: true };
      const summary = open.finish((last + 1) * 1000);
      await this.render(open).catch((err: Error) => this.log(`hongbao controller: charts of run ${open.id} failed: ${err.message}`));
      this.log(
        `hongbao controller: closed run ${open.id}, left open by a controller that stopped ${gap} s ago (more than the ${RESUME_WINDOW_SECONDS} s agents keep): ${summary.seconds} seconds recorded, stoppedAt set to its last second`,
      );
      closed = open.id;
    }
    return { run: this.startRun(config), continued: false, ...(closed ? { closed } : {}) };
  }

  private resume(run: Run, config: Record<string, unknown>): Run {
    this.run = run;
    const first = run.lastSecond() + 1;
    this.qpsHistory.push(...run.meta.qpsChanges);
    this.timeline = new Timeline(
      run.meta.startSecond,
      (s) => this.targetAt(s),
      (s) => this.expectedAt(s),
      first,
    );
    this.stubNext = first;
    for (const [id, a] of Object.entries(run.meta.agents)) this.pending.set(id, { ...(a as unknown as AgentEntry), id, lost: false, lostAtSecond: null, lastSampleAt: null, registeredAt: this.clock() });
    this.resumedAt = this.clock();
    run.meta.resumes = [...(run.meta.resumes ?? []), { at: new Date(this.clock()).toISOString(), fromSecond: first, pid: process.pid, config }];
    run.saveMeta();
    this.log(
      `hongbao controller: continuing run ${run.id} left open by a previous controller: ${run.rows.length} seconds on disk (up to ${first - 1}); ` +
        `seconds from ${first} on are written once its ${this.pending.size} agent(s) have re-registered and re-pushed them (or after --lost-after ${this.config.lostAfterSeconds} s)`,
    );
    return run;
  }

  /** Stops the current run: writes what is recorded, summary.json, the stub's audit, report.html and the charts. */
  async stopRun(id?: string) {
    const run = this.run;
    if (!run || run.stopped || (id !== undefined && run.id !== id)) {
      throw new CodedError(404, HttpError.NOT_FOUND, id ? `no running run ${id}` : 'no run is in progress');
    }
    const last = this.nowSecond() - 1;
    await this.awaitSeconds(last);
    await this.charting;
    run.append(this.timeline!.take(last));
    for (const a of this.agents.values()) run.meta.agents[a.id] = { ...a };
    await this.saveAudit(run);
    const summary = run.finish(this.clock());
    const charts = await this.render(run);
    const report = join(run.dir, REPORT_FILE);
    this.broadcast('stopped', { id: run.id });
    this.log(`hongbao controller: run ${run.id} stopped; report ${report}, charts in ${join(run.dir, 'charts')}`);
    return { id: run.id, dir: run.dir, summary, charts, report };
  }

  /** Waits (at most stopGraceMs) until agents and stub have reported every second up to `last`. */
  private async awaitSeconds(last: number): Promise<void> {
    const end = Date.now() + (this.config.stopGraceMs ?? 0);
    while (Date.now() < end && !this.timeline!.complete(last, !!this.config.stubUrl)) {
      await new Promise((r) => setTimeout(r, 200));
      await this.pollStub();
    }
  }

  /** Reads the stub's /audit into the run's audit.json (or why it could not). */
  private async saveAudit(run: Run): Promise<void> {
    const stub = this.config.stubUrl;
    if (!stub) return;
    const url = new URL('/audit', stub).href;
    const at = new Date(this.clock()).toISOString();
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.config.callTimeoutMs ?? 5000) });
      const body = (await res.json()) as Record<string, Record<string, unknown>> & { message?: string };
      if (!res.ok) throw new Error(`answered ${res.status}: ${body.message ?? JSON.stringify(body)}`);
      run.saveAudit({ at, url, audit: body });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      const why = e.name === 'TimeoutError' ? 'no answer in time' : (e.cause?.code ?? e.message);
      this.log(`hongbao controller: the stub's audit ${url} could not be read: ${why}`);
      run.saveAudit({ at, url, error: why });
    }
  }

  listRuns(): Array<{ id: string; startedAt: string | null; stoppedAt: string | null; current: boolean; report: boolean }> {
    const dir = this.config.resultsDir;
    if (!existsSync(dir)) return [];
    const out = [];
    for (const name of readdirSync(dir).sort()) {
      const meta = join(dir, name, 'run.json');
      if (!existsSync(meta)) continue;
      let m: { startedAt?: string; stoppedAt?: string | null } = {};
      try {
        m = JSON.parse(readFileSync(meta, 'utf8'));
      } catch {
        // a run.json being rewritten; list it anyway
      }
      out.push({
        id: name,
        startedAt: m.startedAt ?? null,
        stoppedAt: m.stoppedAt ?? null,
        current: this.run?.id === name && !this.run.stopped,
        report: existsSync(join(dir, name, REPORT_FILE)),
      });
    }
    return out;
  }

  /** Path of a file of a run folder (`charts/NAME.png`, `report.html`); 404 when it is not there (yet). */
  runFile(runId: string, file: string): string {
    if (!/^[0-9]{8}-[0-9]{6}(-[0-9]+)?$/.test(runId)) throw new CodedError(404, HttpError.NOT_FOUND, `no run ${runId}`);
    const path = join(this.config.resultsDir, runId, file);
    if (!existsSync(path)) throw new CodedError(404, HttpError.NOT_FOUND, `no ${file} in run ${runId} (yet)`);
    return path;
  }

  // ---- agents ---------------------------------------------------------------------------------

  register(reg: AgentRegistration): { entry: AgentEntry; created: boolean; resendFrom: number | null } {
    const { qpsChanges, ...rest } = reg;
    const old = this.agents.get(reg.id) ?? this.pending.get(reg.id);
    this.pending.delete(reg.id);
    const now = this.clock();
    const entry: AgentEntry = {
      ...rest,
      registeredAt: old?.registeredAt ?? now,
      registeredSecond: old?.registeredSecond ?? Math.floor(now / 1000),
      lastSampleAt: old?.lastSampleAt ?? null,
      lastSampleSecond: old?.lastSampleSecond ?? null,
      samples: old?.samples ?? 0,
      lost: false,
      lostAtSecond: null,
    };
    this.agents.set(reg.id, entry);
    if (old?.lost) this.log(`hongbao controller: agent ${reg.id} is back`);
    this.recordAgent(entry);
    this.broadcast('agents', this.agentList());
    if (qpsChanges) this.learnQps(reg.id, qpsChanges);
    // Samples from this second on are welcome again (a restarted agent or controller re-pushes them).
    return { entry, created: !old, resendFrom: this.timeline?.next ?? null };
  }

  /**
   * Takes from an agent's QPS timeline the changes this controller does not know: those after its
   * last known change, or, knowing none, the one in effect now (a restarted controller, agents
   * already shaking). Recorded in the run with `learnedFrom`.
   */
  private learnQps(id: string, changes: Array<{ at: number; qps: number }>): void {
    const now = this.nowSecond();
    const sorted = [...changes].sort((a, b) => a.at - b.at);
    const lastAt = this.qpsHistory.reduce((m, c) => Math.max(m, c.at), -Infinity);
    const inEffect = sorted.filter((c) => c.at <= now).pop();
    for (const c of sorted) {
      const known = this.qpsHistory.find((h) => h.at === c.at);
      if (known) {
        if (known.qps !== c.qps) this.log(`hongbao controller: agent ${id} runs QPS ${c.qps} from second ${c.at}, the controller recorded ${known.qps}: check that agent`);
        continue;
      }
      const wanted = lastAt === -Infinity ? c.at >= (inEffect?.at ?? -Infinity) : c.at > lastAt;
      if (!wanted) continue;
      this.record({ qps: c.qps, at: c.at, requestedAt: this.clock(), agents: [], learnedFrom: id });
      this.log(`hongbao controller: learned from agent ${id}: fleet QPS ${c.qps} from second ${c.at}`);
    }
  }

  sample(id: string, s: AgentSample): { accepted: boolean; late: boolean } {
    const a = this.agents.get(id);
    if (!a) throw new CodedError(404, HttpError.NOT_FOUND, `agent ${id} is not registered: POST /agents first`);
    let hist: Histogram | undefined;
    if (s.hist) {
      try {
        hist = Histogram.decode(s.hist);
      } catch (err) {
        throw new CodedError(400, HttpError.BAD_REQUEST, `body/hist is not an encoded histogram: ${(err as Error).message}`);
      }
    }
    a.lastSampleAt = this.clock();
    a.lastSampleSecond = Math.max(a.lastSampleSecond ?? 0, s.second);
    a.samples++;
    if (a.lost) {
      a.lost = false;
      a.lostAtSecond = null;
      this.log(`hongbao controller: agent ${id} is sending samples again`);
      this.recordAgent(a);
    }
    if (!this.timeline) return { accepted: false, late: false };
    const late = s.second < this.nowSecond() - (this.config.settleSeconds ?? 3);
    return { accepted: this.timeline.addSample(id, s, hist), late };
  }

  agentList() {
    const now = this.clock();
    return [...this.agents.values()].map((a) => ({
      id: a.id,
      controlUrl: a.controlUrl,
      users: a.users ?? null,
      totalUsers: a.totalUsers ?? null,
      workers: a.workers ?? null,
      status: a.lost ? 'lost' : a.samples > 0 ? 'active' : 'registered',
      samples: a.samples,
      lastSampleSecond: a.lastSampleSecond,
      lastSampleAgoS: a.lastSampleAt === null ? null : Math.round((now - a.lastSampleAt) / 100) / 10,
    }));
  }

  /** An agent's entry as the run's run.json keeps it (registration, lost and back again, the end). */
  private recordAgent(a: AgentEntry): void {
    if (!this.run || this.run.stopped) return;
    this.run.meta.agents[a.id] = { ...a };
    this.run.saveMeta();
  }

  private expectedAt(second: number): string[] {
    const out: string[] = [];
    for (const a of this.agents.values()) {
      if (a.registeredSecond > second) continue;
      if (a.lost && a.lostAtSecond !== null && second >= a.lostAtSecond) continue;
      out.push(a.id);
    }
    return out;
  }

  /** Marks agents lost whose samples stopped; reports each once. */
  checkLost(): void {
    const now = this.clock();
    const limit = this.config.lostAfterSeconds * 1000;
    if (this.resumedAt !== undefined && now - this.resumedAt > limit) {
      // Agents of the continued run that never came back: reported lost from where this controller took over.
      const from = this.timeline?.next ?? this.nowSecond();
      for (const [id, a] of this.pending) {
        this.pending.delete(id);
        const entry: AgentEntry = { ...a, lost: true, lostAtSecond: from };
        this.agents.set(id, entry);
        this.log(`hongbao controller: agent ${id} of run ${this.run?.id} did not register again within ${this.config.lostAfterSeconds} s of the restart: lost from second ${from}`);
        this.recordAgent(entry);
        this.broadcast('agents', this.agentList());
      }
    }
    for (const a of this.agents.values()) {
      const last = a.lastSampleAt ?? a.registeredAt;
      if (!a.lost && now - last > limit) {
        a.lost = true;
        a.lostAtSecond = Math.floor(last / 1000) + 1;
        this.log(`hongbao controller: agent ${a.id} lost: no sample for ${Math.round((now - last) / 1000)} s`);
        this.recordAgent(a);
        this.broadcast('agents', this.agentList());
      }
    }
  }

  // ---- QPS ------------------------------------------------------------------------------------

  currentQps(): { qps: number | null; at: number | null } {
    const cur = changeAt(this.qpsHistory, this.nowSecond());
    return { qps: cur?.qps ?? null, at: cur?.at ?? null };
  }

  targetAt(second: number): number | null {
    return changeAt(this.qpsHistory, second)?.qps ?? null;
  }

  /** Records a change in the history (kept sorted by `at`) and in the run. */
  private record(change: QpsChangeRecord): void {
    const byAt = (a: QpsChangeRecord, b: QpsChangeRecord) => a.at - b.at;
    this.qpsHistory.push(change);
    this.qpsHistory.sort(byAt);
    if (this.run) {
      this.run.meta.qpsChanges.push(change);
      this.run.meta.qpsChanges.sort(byAt);
      this.run.saveMeta();
    }
    this.broadcast('qps', change);
  }

  fleetUsers(): number | null {
    let n: number | null = null;
    for (const a of this.agents.values()) if (typeof a.totalUsers === 'number') n = Math.max(n ?? 0, a.totalUsers);
    return n;
  }

  /** Picks one `at` second for the whole fleet and sends {qps, at} to every agent in parallel. */
  async setQps(qps: number, requestedAt?: number): Promise<QpsChangeRecord> {
    if (this.agents.size === 0) throw new CodedError(409, HttpError.CONFLICT, 'no agents are registered: start agents with --controller first');
    const users = this.fleetUsers();
    if (users !== null && qps > users) throw new CodedError(400, HttpError.BAD_REQUEST, `body/qps (${qps}) must be <= the fleet's ${users} users`);
    const now = this.nowSecond();
    const at = requestedAt ?? now + this.config.leadSeconds;
    if (at <= now) throw new CodedError(400, HttpError.BAD_REQUEST, `body/at (${at}) must be after the current second ${now}`);
    // An agent may answer as late as just before the switch: on a loaded machine it can take seconds.
    const timeout = this.config.callTimeoutMs ?? Math.max(1500, (at - now) * 1000 - 500);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.config.token) headers.authorization = `Bearer ${this.config.token}`;
    const agents = await Promise.all(
      [...this.agents.values()].map(async (a) => {
        try {
          const res = await fetch(new URL('/qps', a.controlUrl), { method: 'POST', headers, body: JSON.stringify({ qps, at }), signal: AbortSignal.timeout(timeout) });
          const text = await res.text();
          if (!res.ok) {
            let message = text.slice(0, 300);
            try {
              message = (JSON.parse(text) as { message?: string }).message ?? message;
            } catch {
              // not JSON
            }
            return { id: a.id, ok: false, error: `agent answered ${res.status}: ${message}` };
          }
          return { id: a.id, ok: true };
        } catch (err) {
          const e = err as Error & { cause?: { message?: string; code?: string } };
          const why = e.name === 'TimeoutError' ? `no answer within ${timeout} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
          return { id: a.id, ok: false, error: `${a.controlUrl} unreachable: ${why}` };
        }
      }),
    );
    const change: QpsChangeRecord = { qps, at, requestedAt: this.clock(), agents };
    const failed = agents.filter((a) => !a.ok);
    this.log(`hongbao controller: QPS ${qps} from second ${at}: ${agents.length - failed.length}/${agents.length} agents accepted${failed.length ? `; failed: ${failed.map((f) => `${f.id} (${f.error})`).join(', ')}` : ''}`);
    this.record(change);
    return change;
  }

  // ---- once a second --------------------------------------------------------------------------

  /** Polls the stub for completed seconds since the last poll. Failures are reported, never thrown. */
  async pollStub(): Promise<void> {
    const url = this.config.stubUrl;
    if (!url || !this.timeline || this.polling) return;
    this.polling = true;
    try {
      const res = await fetch(new URL(`/stats?since=${this.stubNext}`, url), { signal: AbortSignal.timeout(this.config.callTimeoutMs ?? 1500) });
      if (!res.ok) throw new Error(`answered ${res.status}`);
      const body = (await res.json()) as { connections: number; seconds: Array<Record<string, number>> };
      for (const e of body.seconds) {
        const counts = Object.fromEntries(SERVER_FIELDS.map((f) => [f, f === 'connections' ? body.connections : (e[f] ?? 0)])) as ServerCounts;
        this.timeline.addServer(e.second, counts);
        this.stubNext = Math.max(this.stubNext, e.second + 1);
      }
      if (this.stubError) this.log(`hongbao controller: stub ${url} reachable again`);
      this.stubError = null;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      const why = e.cause?.code ?? e.message;
      if (!this.stubError) this.log(`hongbao controller: stub ${url} unreachable (${why}); its counters are missing until it answers`);
      this.stubError = why;
    } finally {
      this.polling = false;
    }
  }

  /** Writes settled seconds to series.ndjson, feeds the dashboard, re-renders charts when due. */
  flush(): Row[] {
    if (!this.run || this.run.stopped || !this.timeline) return [];
    const settled = this.nowSecond() - (this.config.settleSeconds ?? 3);
    if (this.resumedAt !== undefined) {
      // A continued run: the seconds since the previous controller died come from the agents'
      // re-push; write them once every agent has caught up (or is lost), not empty before.
      const behind = this.pending.size > 0 || [...this.agents.values()].some((a) => !a.lost && (a.lastSampleSecond ?? -1) < settled);
      if (behind && this.clock() - this.resumedAt <= this.config.lostAfterSeconds * 1000) return [];
      this.resumedAt = undefined;
    }
    const rows = this.timeline.take(settled);
    this.run.append(rows);
    for (const r of rows) this.broadcast('row', dashboardRow(r));
    const now = this.clock();
    if (!this.charting && now - this.lastChartAt >= this.config.chartEverySeconds * 1000 && this.run.rows.length > 0) {
      this.lastChartAt = now;
      const run = this.run;
      this.charting = this.render(run)
        .catch((err: Error) => this.log(`hongbao controller: charts of run ${run.id} failed: ${err.message}`))
        .finally(() => (this.charting = undefined));
    }
    return rows;
  }

  private async render(run: Run): Promise<string[]> {
    const charts = await (this.config.renderCharts ? this.config.renderCharts(run) : run.charts());
    this.broadcast('report', { id: run.id });
    return charts;
  }

  async tick(): Promise<void> {
    this.checkLost();
    await this.pollStub();
    this.flush();
    // The dashboard shows the age of every agent's last sample.
    if (this.agents.size) this.broadcast('agents', this.agentList());
  }

  // ---- dashboard ------------------------------------------------------------------------------

  broadcast(event: string, data: unknown): void {
    for (const s of this.subscribers) s.send(event, data);
  }

  snapshot() {
    return {
      run: this.run ? { id: this.run.id, startSecond: this.run.meta.startSecond, stopped: this.run.stopped } : null,
      qps: this.currentQps(),
      history: this.qpsHistory,
      agents: this.agentList(),
      rows: (this.run?.rows ?? []).slice(-900).map(dashboardRow),
      tokenRequired: !!this.config.token,
    };
  }

  health() {
    const agents = this.agentList();
    return {
      ok: this.stubError === null && agents.every((a) => a.status !== 'lost'),
      run: this.run?.id ?? null,
      agents: { total: agents.length, active: agents.filter((a) => a.status === 'active').length, lost: agents.filter((a) => a.status === 'lost').map((a) => a.id) },
      stub: this.config.stubUrl ? { url: this.config.stubUrl, ok: this.stubError === null, error: this.stubError } : null,
    };
  }
}

/** A row without the histogram, for the browser. */
export function dashboardRow(r: Row) {
  const { hist: _hist, ...rest } = r;
  return rest;
}
