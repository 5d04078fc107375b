// Scenarios "agent-connect", "agent-spread", "agent-burst": the real agent (`hongbao agent`) against
// the real stub, both on loopback, measured from the outside (/proc, the agent's control endpoint,
// the stub's /stats).
//
// agent-connect: one agent worker connects and logs in C users (at an unbounded --ramp, so what is
//   measured is what one process can do): new connections per second of wall clock and CPU us per
//   connection (agent parent + worker, /proc), from the worker's open sockets (/proc/PID/fd, polled);
//   then VmRSS of parent + worker once settled, minus that of an agent holding one user: KB/connection.
// agent-spread / agent-burst: one agent with W workers holds C users; the fleet QPS steps through the
//   rates (POST /qps with `at`, rule window); over each window (whole epoch seconds after a warm-up):
//   agent CPU (parent + workers) / shakes sent, stub CPU / shakes served, user and sys apart; exact
//   seconds on both sides (stub `shakes`, agent `sent` equal to the target); latency p50/p99 from the
//   agent's per-second records (reply - scheduled send). agent-spread also measures RSS per connection
//   of the agent (W workers) and of the stub.
//
// Send lateness (actual send - scheduled send) comes from the agent's per-second lateP99Ms: the
// worst second's p99 and the median second's.
import { AgentProcess, type AgentSecond } from './agent-process.ts';
import { phasesToChanges, qpsAt } from '../common/schedule.ts';
import { nowSecond, sleep, sleepUntil } from './clock.ts';
import { cpuUsBetween, fdCount, rssKb, sampleCpu, sysUsBetween, systemBusyCores, totalRssKb, type CpuSample } from './proc.ts';
import type { Figure, Scenario, ScenarioResult } from './report.ts';
import { GOALS as STUB_GOALS } from './stub-bench.ts';
import { StubProcess, type StubSecond } from './stub-process.ts';

export const AGENT_GOALS = {
  connectsPerS: { atLeast: 4000 },
  kbPerConnection: { goal: 5, goRef: 17 },
  cpuUsPerShake: { goal: 12, goRef: 20 },
} as const;

/** Others' CPU (cores) above which a figure is flagged: the machine is shared and has 2 cores. */
const BUSY_OTHERS_CORES = 0.25;
/** The agent's --ramp maximum: the connect rate is then bounded by the process, not by the pacing. */
const UNBOUNDED_RAMP = 1_000_000;

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const median = (xs: readonly number[]) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;

interface Cores {
  agent: number;
  stub: number;
  bench: number;
  machine: number;
  others: number;
}

/** CPU split between two samples of [stub pids..., agent pids..., bench pid]. */
function coresBetween(a: CpuSample, b: CpuSample, nStub: number, nAgent: number): Cores {
  const us = cpuUsBetween(a, b);
  const ms = b.atMs - a.atMs;
  const c = (from: number, to: number) => sum(us.slice(from, to)) / 1000 / ms;
  const cores = { stub: c(0, nStub), agent: c(nStub, nStub + nAgent), bench: c(nStub + nAgent, us.length), machine: systemBusyCores(a, b), others: 0 };
  cores.others = Math.max(0, cores.machine - cores.stub - cores.agent - cores.bench);
  return cores;
}

function coresNote(c: Cores): string {
  return `cores: agent ${c.agent.toFixed(2)}, stub ${c.stub.toFixed(2)}, others ${c.others.toFixed(2)}`;
}

interface Baseline {
  parentKb: number;
  workerKb: number[];
  totalKb: number;
  workerFds: number[];
}

/** VmRSS of an agent with `workers` workers holding one user each (its fixed cost), then stops it. */
async function baseline(server: string, workers: number, sourceIps: string[], log: (line: string) => void): Promise<Baseline> {
  const agent = await AgentProcess.start({ server, first: 0, count: workers, totalUsers: workers, workers, sourceIps, connectTimeoutMs: 20_000 }, log, 'baseline');
  try {
    await agent.connected;
    await sleep(2000); // the worker's full GC after its connect phase runs at its next second
    const parentKb = rssKb(agent.listening.pid);
    const workerKb = agent.workerPids.map(rssKb);
    return { parentKb, workerKb, totalKb: parentKb + sum(workerKb), workerFds: agent.workerPids.map(fdCount) };
  } finally {
    await agent.stop();
  }
}

// ---- agent-connect --------------------------------------------------------------------------------

export interface AgentConnectConfig {
  users: number;
  stubWorkers: number;
  sourceIps: string[];
  ramp: number;
  settleS: number;
  pollMs: number;
  connectTimeoutMs: number;
  maxQps: number;
}

export function agentConnectScenario(cfg: AgentConnectConfig): Scenario {
  return {
    name: 'agent-connect',
    // stub + baseline agent ~6 s; connecting ~1 ms per user when the machine is busy
    estimateMs: (8 + cfg.users / 1000 + cfg.settleS + 4) * 1000,
    run: (log) => runConnect(cfg, log),
  };
}

interface ConnSample {
  fds: number;
  cpu: CpuSample;
}

async function runConnect(cfg: AgentConnectConfig, log: (line: string) => void): Promise<ScenarioResult> {
  const name = 'agent-connect';
  const n = cfg.users;
  log(`${name}: starting the stub with ${cfg.stubWorkers} workers`);
  const stub = await StubProcess.start({ workers: cfg.stubWorkers, maxQps: cfg.maxQps }, log);
  let agent: AgentProcess | undefined;
  try {
    await sleep(1000);
    const base = await baseline(stub.wsUrl, 1, cfg.sourceIps, log);
    log(`${name}: baseline agent (1 worker, 1 user): ${base.parentKb} + ${base.workerKb.join(' + ')} KiB`);
    const since = nowSecond();
    log(`${name}: one agent worker connects ${n} users via ${cfg.sourceIps.join(',')} at --ramp ${cfg.ramp}`);
    agent = await AgentProcess.start(
      { server: stub.wsUrl, first: 0, count: n, totalUsers: n, workers: 1, sourceIps: cfg.sourceIps, ramp: cfg.ramp, connectTimeoutMs: cfg.connectTimeoutMs },
      log,
      'connect',
    );
    const worker = agent.workerPids[0];
    const pids = [...stub.pids, ...agent.pids, process.pid];
    const nStub = stub.pids.length;
    const nAgent = agent.pids.length;
    const samples: ConnSample[] = [];
    let done = false;
    agent.connected.then(
      () => (done = true),
      () => (done = true),
    );
    // Poll the worker's open sockets and everyone's CPU until the agent says all are in (+ 2 polls).
    let after = 0;
    while (after < 2) {
      samples.push({ fds: fdCount(worker), cpu: sampleCpu(pids) });
      if (done) after++;
      await sleep(cfg.pollMs);
    }
    const connected = await agent.connected; // rejects on timeout or exit
    // Sockets of the worker = fds - its own fixed fds; calibrated on the settled count (all n open).
    const fdFixed = samples[samples.length - 1].fds - n;
    const conns = samples.map((s) => s.fds - fdFixed);
    let iStart = 0;
    for (let i = 0; i < conns.length && conns[i] <= 0; i++) iStart = i;
    const iEnd = conns.findIndex((c) => c >= n);
    const at = (p: number) => conns.findIndex((c) => c >= p * n);
    const i10 = at(0.1);
    const i90 = at(0.9);
    const agentUs = (i: number, j: number) => sum(cpuUsBetween(samples[i].cpu, samples[j].cpu).slice(nStub, nStub + nAgent));
    const agentSysUs = (i: number, j: number) => sum(sysUsBetween(samples[i].cpu, samples[j].cpu).slice(nStub, nStub + nAgent));
    const span = (i: number, j: number) => (samples[j].cpu.atMs - samples[i].cpu.atMs) / 1000;
    const whole = { conns: conns[iEnd] - Math.max(0, conns[iStart]), s: span(iStart, iEnd), cpuUs: agentUs(iStart, iEnd), sysUs: agentSysUs(iStart, iEnd) };
    const mid = { conns: conns[i90] - conns[i10], s: span(i10, i90), cpuUs: agentUs(i10, i90), sysUs: agentSysUs(i10, i90) };
    const ratePerS = whole.conns / whole.s;
    const midRatePerS = mid.conns / mid.s;
    const cpuUsPerConn = whole.cpuUs / whole.conns;
    const sysUsPerConn = whole.sysUs / whole.conns;
    const midCpuUsPerConn = mid.cpuUs / mid.conns;
    const cores = coresBetween(samples[iStart].cpu, samples[iEnd].cpu, nStub, nAgent);
    const stubStats = await stub.stats(since - 1);
    const logins = stubStats.seconds.filter((s) => s.logins > 0).map((s) => ({ second: s.second, logins: s.logins }));
    const peakLogins = Math.max(0, ...logins.map((s) => s.logins));
    const health = await agent.health();
    const failures = (health.workers as Array<{ failures?: number }>).reduce((a, w) => a + (w.failures ?? 0), 0);
    log(`${name}: ${n} users in ${whole.s.toFixed(2)} s: ${ratePerS.toFixed(0)}/s (10-90 %: ${midRatePerS.toFixed(0)}/s), ${cpuUsPerConn.toFixed(0)} us CPU per connection, ${failures} failed attempts`);

    await sleep(cfg.settleS * 1000);
    const parentKb = rssKb(agent.listening.pid);
    const workerKb = agent.workerPids.map(rssKb);
    const heldKb = parentKb + sum(workerKb);
    const kbPerConnection = (heldKb - base.totalKb) / n;
    log(`${name}: held RSS ${parentKb} + ${workerKb.join(' + ')} KiB: ${kbPerConnection.toFixed(2)} KB/connection`);

    const why: string[] = [];
    if (cores.others > BUSY_OTHERS_CORES) why.push(`other processes used ${cores.others.toFixed(2)} of the cores`);
    if (failures > 0) why.push(`${failures} failed connection attempts (retried)`);
    const caveat = why.join('; ') || undefined;
    const figures: Figure[] = [
      {
        id: 'agent.connect.perS',
        label: `agent connect+login rate, 1 worker, ${n} users`,
        value: ratePerS,
        unit: 'conn/s',
        ...AGENT_GOALS.connectsPerS,
        note: `wall clock ${whole.s.toFixed(2)} s first socket -> all open; 10-90 %: ${midRatePerS.toFixed(0)}/s; stub peak ${peakLogins} logins/s; --ramp ${cfg.ramp}; ${coresNote(cores)}`,
        caveat,
      },
      {
        id: 'agent.connect.cpuUsPerConnection',
        label: 'agent CPU per new connection (parent+worker)',
        value: cpuUsPerConn,
        unit: 'us',
        note: `${(cpuUsPerConn - sysUsPerConn).toFixed(0)} user + ${sysUsPerConn.toFixed(0)} sys; 10-90 %: ${midCpuUsPerConn.toFixed(0)} us; one full core would allow ~${(1e6 / cpuUsPerConn).toFixed(0)} conn/s`,
        caveat,
      },
      {
        id: 'agent.1w.kbPerConnection',
        label: `agent 1w RSS per held connection (${n})`,
        value: kbPerConnection,
        unit: 'KB',
        ...AGENT_GOALS.kbPerConnection,
        note: `(${heldKb} - ${base.totalKb} KiB) / ${n}; parent+worker, ${cfg.settleS} s after "connected", baseline = agent holding 1 user`,
      },
    ];
    return {
      name,
      figures,
      details: {
        config: cfg,
        pids: { agent: agent.pids, stub: stub.pids },
        baseline: base,
        connectedEvent: connected,
        whole: { ...whole, ratePerS, cpuUsPerConn, sysUsPerConn },
        tenToNinety: { ...mid, ratePerS: midRatePerS, cpuUsPerConn: midCpuUsPerConn },
        cores,
        failures,
        stubLoginsPerSecond: logins,
        samples: samples.map((s, i) => ({ ms: Math.round(s.cpu.atMs - agent!.spawnedAt), conns: conns[i] })),
        rss: { parentKb, workerKb, heldKb, baselineKb: base.totalKb, kbPerConnection },
        health,
      },
    };
  } finally {
    if (agent) await agent.stop();
    await stub.stop();
  }
}

// ---- agent-spread / agent-burst --------------------------------------------------------------------

export interface AgentLoadConfig {
  mode: 'spread' | 'burst';
  users: number;
  agentWorkers: number;
  stubWorkers: number;
  rates: number[];
  warmupS: number;
  windowS: number;
  settleS: number;
  sourceIps: string[];
  ramp: number;
  generator: { rate: number; total: number };
  maxQps: number;
  /** Measure RSS per connection (agent, stub) too: needs a baseline agent first (~4 s). */
  measureRss: boolean;
  connectTimeoutMs: number;
  /** The agent's transport: WebSocket (default) or the original raw-TCP framing (`agent-tcp`). */
  transport?: 'ws' | 'tcp';
}

/** Scenario name, and the tag in figure ids and labels: the mode, plus `-tcp` over raw TCP. */
function loadTag(cfg: AgentLoadConfig): { name: string; tag: string } {
  return cfg.transport === 'tcp' ? { name: 'agent-tcp', tag: `${cfg.mode}-tcp` } : { name: `agent-${cfg.mode}`, tag: cfg.mode };
}

export function agentLoadScenario(cfg: AgentLoadConfig): Scenario {
  const perRate = cfg.warmupS + cfg.windowS;
  return {
    name: loadTag(cfg).name,
    estimateMs: (3 + (cfg.measureRss ? 5 : 0) + cfg.users / 1500 + cfg.settleS + 2 + perRate * cfg.rates.length + 4 + 5) * 1000,
    run: (log) => runLoad(cfg, log),
  };
}

interface LoadPhase {
  qps: number;
  from: number;
  to: number;
}

interface LoadPhaseResult {
  qps: number;
  window: [number, number];
  windowSeconds: number;
  wallMs: number;
  agentCpuUs: number;
  agentSysUs: number;
  agentSent: number;
  agentUsPerShake: number;
  agentSysUsPerShake: number;
  stubCpuUs: number;
  stubSysUs: number;
  stubServed: number;
  stubUsPerShake: number;
  stubSysUsPerShake: number;
  cores: Cores;
  stubExactSeconds: number;
  stubMaxDeviation: number;
  agentExactSeconds: number;
  agentMaxDeviation: number;
  missed: number;
  answered: number;
  overload: number;
  errors: number;
  latency: { p50Ms: number; p99Ms: number; p99MedianMs: number; maxMs: number };
  /** Send lateness p99: worst second's and median second's. */
  lateness: { p99Ms: number; p99MedianMs: number };
  caveat: string;
  perSecond: Array<{ second: number; stubShakes: number; stubServed: number; sent: number; missed: number; answered: number; p50Ms: number; p99Ms: number; maxMs: number }>;
}

function measureLoadPhase(
  p: LoadPhase,
  windowFrom: number,
  a: CpuSample,
  b: CpuSample,
  nStub: number,
  nAgent: number,
  stubSeconds: StubSecond[],
  agentSeconds: AgentSecond[],
): LoadPhaseResult {
  const us = cpuUsBetween(a, b);
  const sys = sysUsBetween(a, b);
  const stubBy = new Map(stubSeconds.map((s) => [s.second, s]));
  const agentBy = new Map(agentSeconds.map((s) => [s.second, s]));
  const res: LoadPhaseResult = {
    qps: p.qps,
    window: [windowFrom, p.to],
    windowSeconds: p.to - windowFrom,
    wallMs: Math.round(b.atMs - a.atMs),
    stubCpuUs: Math.round(sum(us.slice(0, nStub))),
    stubSysUs: Math.round(sum(sys.slice(0, nStub))),
    agentCpuUs: Math.round(sum(us.slice(nStub, nStub + nAgent))),
    agentSysUs: Math.round(sum(sys.slice(nStub, nStub + nAgent))),
    agentSent: 0,
    agentUsPerShake: NaN,
    agentSysUsPerShake: NaN,
    stubServed: 0,
    stubUsPerShake: NaN,
    stubSysUsPerShake: NaN,
    cores: coresBetween(a, b, nStub, nAgent),
    stubExactSeconds: 0,
    stubMaxDeviation: 0,
    agentExactSeconds: 0,
    agentMaxDeviation: 0,
    missed: 0,
    answered: 0,
    overload: 0,
    errors: 0,
    latency: { p50Ms: NaN, p99Ms: NaN, p99MedianMs: NaN, maxMs: NaN },
    lateness: { p99Ms: NaN, p99MedianMs: NaN },
    caveat: '',
    perSecond: [],
  };
  const p50s: number[] = [];
  const p99s: number[] = [];
  const lates: number[] = [];
  let maxMs = 0;
  for (let s = windowFrom; s < p.to; s++) {
    const st = stubBy.get(s);
    const ag = agentBy.get(s);
    const shakes = st?.shakes ?? 0;
    const served = st ? st.won + st.empty : 0;
    const sent = ag?.sent ?? 0;
    res.stubServed += served;
    res.agentSent += sent;
    res.missed += ag?.missed ?? 0;
    res.answered += ag?.answered ?? 0;
    res.overload += ag?.overload ?? 0;
    res.errors += ag?.errors ?? 0;
    if (st && shakes === p.qps) res.stubExactSeconds++;
    if (ag && sent === p.qps) res.agentExactSeconds++;
    res.stubMaxDeviation = Math.max(res.stubMaxDeviation, Math.abs(shakes - p.qps));
    res.agentMaxDeviation = Math.max(res.agentMaxDeviation, Math.abs(sent - p.qps));
    if (ag && ag.answered > 0) {
      p50s.push(ag.p50Ms);
      p99s.push(ag.p99Ms);
      maxMs = Math.max(maxMs, ag.maxMs);
    }
    if (ag && ag.sent > 0 && typeof ag.lateP99Ms === 'number') lates.push(ag.lateP99Ms);
    res.perSecond.push({ second: s, stubShakes: shakes, stubServed: served, sent, missed: ag?.missed ?? 0, answered: ag?.answered ?? 0, p50Ms: ag?.p50Ms ?? NaN, p99Ms: ag?.p99Ms ?? NaN, maxMs: ag?.maxMs ?? NaN });
  }
  res.latency = { p50Ms: median(p50s), p99Ms: p99s.length ? Math.max(...p99s) : NaN, p99MedianMs: median(p99s), maxMs: p99s.length ? maxMs : NaN };
  res.lateness = { p99Ms: lates.length ? Math.max(...lates) : NaN, p99MedianMs: median(lates) };
  res.agentUsPerShake = res.agentSent ? res.agentCpuUs / res.agentSent : NaN;
  res.agentSysUsPerShake = res.agentSent ? res.agentSysUs / res.agentSent : NaN;
  res.stubUsPerShake = res.stubServed ? res.stubCpuUs / res.stubServed : NaN;
  res.stubSysUsPerShake = res.stubServed ? res.stubSysUs / res.stubServed : NaN;
  const why: string[] = [];
  if (res.cores.others > BUSY_OTHERS_CORES) why.push(`other processes used ${res.cores.others.toFixed(2)} of the cores`);
  if (res.missed > 0) why.push(`agent missed ${res.missed} shakes`);
  res.caveat = why.join('; ');
  return res;
}

async function runLoad(cfg: AgentLoadConfig, log: (line: string) => void): Promise<ScenarioResult> {
  const { name, tag } = loadTag(cfg);
  const n = cfg.users;
  for (const q of cfg.rates) if (q > n) throw new Error(`${q} shakes/s needs at least ${q} users (rule window fires a user at most once a second), have ${n}`);
  log(`${name}: starting the stub with ${cfg.stubWorkers} workers`);
  const stub = await StubProcess.start({ workers: cfg.stubWorkers, maxQps: cfg.maxQps, args: cfg.transport === 'tcp' ? ['--tcp-port', '0'] : [] }, log);
  const server = cfg.transport === 'tcp' ? stub.tcpUrl : stub.wsUrl;
  let agent: AgentProcess | undefined;
  try {
    await sleep(1000);
    const stubIdleKb = totalRssKb(stub.pids);
    let base: Baseline | undefined;
    if (cfg.measureRss) {
      base = await baseline(server, cfg.agentWorkers, cfg.sourceIps, log);
      log(`${name}: baseline agent (${cfg.agentWorkers} workers, 1 user each): ${base.parentKb} + ${base.workerKb.join(' + ')} KiB`);
    }
    log(`${name}: one agent, ${cfg.agentWorkers} workers, ${n} users, mode ${cfg.mode}, rule window; connecting via ${cfg.sourceIps.join(',')}`);
    const t0 = performance.now();
    agent = await AgentProcess.start(
      { server, first: 0, count: n, totalUsers: n, workers: cfg.agentWorkers, sourceIps: cfg.sourceIps, mode: cfg.mode, rule: 'window', qps: 0, ramp: cfg.ramp, connectTimeoutMs: cfg.connectTimeoutMs },
      log,
      cfg.mode,
    );
    const connected = await agent.connected;
    const connectWallS = r1((performance.now() - t0) / 1000);
    log(`${name}: ${n} users connected after ${connectWallS} s (${connected.failures} failed attempts)`);
    // Settle, and meanwhile the CPU both sides spend holding the connections idle (qps 0).
    const pids = [...stub.pids, ...agent.pids, process.pid];
    const nStub = stub.pids.length;
    const nAgent = agent.pids.length;
    const idleA = sampleCpu(pids);
    await sleep(cfg.settleS * 1000);
    const idleCores = coresBetween(idleA, sampleCpu(pids), nStub, nAgent);
    const agentHeldKb = totalRssKb(agent.pids);
    const stubHeldKb = totalRssKb(stub.pids);

    // The schedule: back-to-back phases from two seconds from now, then qps 0.
    const perRate = cfg.warmupS + cfg.windowS;
    const start = nowSecond() + 2;
    const phases: LoadPhase[] = cfg.rates.map((qps, i) => ({ qps, from: start + i * perRate, to: start + (i + 1) * perRate }));
    const end = phases[phases.length - 1].to;
    for (const p of phases) await agent.setQps(p.qps, p.from);
    await agent.setQps(0, end);
    const generator = await stub.generator(cfg.generator.rate, cfg.generator.total);

    const samples: Array<[CpuSample, CpuSample]> = [];
    for (const p of phases) {
      log(`${name}: ${p.qps} shakes/s over seconds ${p.from}..${p.to - 1}, window from ${p.from + cfg.warmupS}`);
      await sleepUntil((p.from + cfg.warmupS) * 1000 + 5);
      const a = sampleCpu(pids);
      await sleepUntil(p.to * 1000 + 5);
      samples.push([a, sampleCpu(pids)]);
    }
    const agentLoadedKb = totalRssKb(agent.pids);
    const stubLoadedKb = totalRssKb(stub.pids);
    const stubStats = await stub.statsThrough(start - 1, end - 1, 6000);
    // The agent lists a second once it is over, with zeros for what no worker has reported yet; a
    // worker reports a second at the start of the next one (later when its loop is behind), and late
    // replies are added as they arrive. Complete = every scheduled shake of every second counted sent
    // or missed, and every sent one answered: wait for that, bounded.
    const timeline = phasesToChanges(phases);
    const target = (t: number) => qpsAt(timeline, t);
    const incomplete = (st: AgentSecond[]) => {
      const by = new Map(st.map((x) => [x.second, x]));
      const out: number[] = [];
      for (let t = start; t < end; t++) {
        const x = by.get(t);
        if (!x || x.sent + x.missed !== target(t) || x.answered < x.sent) out.push(t);
      }
      return out;
    };
    const waitFrom = performance.now();
    let agentStats = await agent.stats(start - 1);
    let missing = incomplete(agentStats.seconds);
    while (missing.length && performance.now() - waitFrom < 10_000) {
      await sleep(500);
      agentStats = await agent.stats(start - 1);
      missing = incomplete(agentStats.seconds);
    }
    const agentStatsWaitMs = Math.round(performance.now() - waitFrom);
    if (missing.length) log(`${name}: after ${agentStatsWaitMs} ms the agent's /stats still has seconds where sent + missed != target or answered < sent: ${missing.join(' ')}`);
    const health = await agent.health();
    const restarts = (health.workers as Array<{ restarts?: number }>).reduce((a, w) => a + (w.restarts ?? 0), 0);
    const audit = await stub.audit();
    const results = phases.map((p, i) => measureLoadPhase(p, p.from + cfg.warmupS, samples[i][0], samples[i][1], nStub, nAgent, stubStats.seconds, agentStats.seconds));
    for (const r of results) {
      const bad = missing.filter((t) => t >= r.window[0] && t < r.window[1]);
      const why = [r.caveat];
      if (restarts) why.push(`agent workers restarted ${restarts} times`);
      if (bad.length) why.push(`agent /stats incomplete after ${agentStatsWaitMs} ms (sent + missed != target or replies outstanding) in ${bad.length} s`);
      r.caveat = why.filter(Boolean).join('; ');
    }

    const m = tag;
    const figures: Figure[] = [];
    const k = (q: number) => `@${q / 1000}k/s`;
    for (const r of results) {
      figures.push({
        id: `agent.${m}.cpuUsPerShake.${r.qps}`,
        label: `agent ${cfg.agentWorkers}w ${m} CPU per sent shake ${k(r.qps)}`,
        value: r.agentUsPerShake,
        unit: 'us',
        ...AGENT_GOALS.cpuUsPerShake,
        note: `${(r.agentUsPerShake - r.agentSysUsPerShake).toFixed(1)} user + ${r.agentSysUsPerShake.toFixed(1)} sys; ${r.agentSent} sent in ${r.windowSeconds} s; ${coresNote(r.cores)}; idle agent ${idleCores.agent.toFixed(3)} cores`,
        caveat: r.caveat || undefined,
      });
      figures.push({
        id: `agent.${m}.stubCpuUsPerShake.${r.qps}`,
        label: `stub ${cfg.stubWorkers}w CPU per served shake (${m}) ${k(r.qps)}`,
        value: r.stubUsPerShake,
        unit: 'us',
        ...STUB_GOALS.cpuUsPerShake,
        note: `${(r.stubUsPerShake - r.stubSysUsPerShake).toFixed(1)} user + ${r.stubSysUsPerShake.toFixed(1)} sys; ${r.stubServed} served; idle stub ${idleCores.stub.toFixed(3)} cores`,
        caveat: r.caveat || undefined,
      });
    }
    for (const r of results) {
      figures.push({
        id: `agent.${m}.stubExactSeconds.${r.qps}`,
        label: `stub shakes = target (${m}) ${k(r.qps)}`,
        value: r.stubExactSeconds,
        unit: `/ ${r.windowSeconds}`,
        pass: r.stubExactSeconds === r.windowSeconds,
        note: `max deviation ${r.stubMaxDeviation}`,
        caveat: r.caveat || undefined,
      });
      figures.push({
        id: `agent.${m}.agentExactSeconds.${r.qps}`,
        label: `agent sent = target (${m}) ${k(r.qps)}`,
        value: r.agentExactSeconds,
        unit: `/ ${r.windowSeconds}`,
        pass: r.agentExactSeconds === r.windowSeconds,
        note: `max deviation ${r.agentMaxDeviation}; missed ${r.missed}; overload ${r.overload}; errors ${r.errors}`,
        caveat: r.caveat || undefined,
      });
    }
    for (const r of results) {
      figures.push({
        id: `agent.${m}.latencyP99Ms.${r.qps}`,
        label: `latency p99 (${m}) ${k(r.qps)}`,
        value: r.latency.p99Ms,
        unit: 'ms',
        note: `p50 ${r.latency.p50Ms.toFixed(1)} ms; reply - scheduled send; p99 = worst second's (median second ${r.latency.p99MedianMs.toFixed(1)} ms), p50 = median second's; max ${r.latency.maxMs.toFixed(1)} ms`,
        caveat: r.caveat || undefined,
      });
    }
    for (const r of results) {
      figures.push({
        id: `agent.${m}.sendLatenessP99Ms.${r.qps}`,
        label: `send lateness p99 (${m}) ${k(r.qps)}`,
        value: r.lateness.p99Ms,
        unit: 'ms',
        goal: m === 'spread' ? 2 : undefined,
        note: `actual send - scheduled send; worst second's p99 (median second ${r.lateness.p99MedianMs.toFixed(2)} ms)`,
        caveat: r.caveat || undefined,
      });
    }
    let rss: Record<string, number> | undefined;
    if (base) {
      const agentKb = (agentHeldKb - base.totalKb) / n;
      const stubKb = (stubHeldKb - stubIdleKb) / n;
      rss = {
        agentBaselineKb: base.totalKb,
        agentHeldKb,
        agentLoadedKb,
        agentKbPerConnection: agentKb,
        agentKbPerConnectionAfterLoad: (agentLoadedKb - base.totalKb) / n,
        stubIdleKb,
        stubHeldKb,
        stubLoadedKb,
        stubKbPerConnection: stubKb,
        stubKbPerConnectionAfterLoad: (stubLoadedKb - stubIdleKb) / n,
      };
      figures.push({
        id: `agent.${cfg.agentWorkers}w.kbPerConnection${cfg.transport === 'tcp' ? '.tcp' : ''}`,
        label: `agent ${cfg.agentWorkers}w RSS per held connection (${n}${cfg.transport === 'tcp' ? ', tcp' : ''})`,
        value: agentKb,
        unit: 'KB',
        ...AGENT_GOALS.kbPerConnection,
        note: `(${agentHeldKb} - ${base.totalKb} KiB) / ${n}; parent+workers, ${cfg.settleS} s after "connected"; after the load ${r2(rss.agentKbPerConnectionAfterLoad)} KB`,
      });
      figures.push({
        id: `stub.${cfg.stubWorkers}w.kbPerConnection.agent${cfg.transport === 'tcp' ? '.tcp' : ''}`,
        label: `stub ${cfg.stubWorkers}w RSS per held connection (${n} agent users${cfg.transport === 'tcp' ? ', tcp' : ''})`,
        value: stubKb,
        unit: 'KB',
        ...STUB_GOALS.kbPerConnection,
        note: `(${stubHeldKb} - ${stubIdleKb} KiB) / ${n}; after the load ${r2(rss.stubKbPerConnectionAfterLoad)} KB`,
      });
    }
    return {
      name,
      figures,
      details: {
        config: cfg,
        pids: { agent: agent.pids, stub: stub.pids },
        connect: { ...connected, wallS: connectWallS },
        idleCores,
        agentStatsWaitMs,
        agentStatsIncompleteSeconds: missing,
        rss,
        phases: results,
        agentRestarts: restarts,
        generator,
        audit,
        health,
      },
    };
  } finally {
    if (agent) await agent.stop();
    await stub.stop();
  }
}
