// Scenario "stub": the server stub's cost per served shake and per held connection, and whether its
// per-second counts are exact.
//   1. start the stub (N workers); VmRSS of primary + workers when idle;
//   2. connect and log in C users from the load processes; VmRSS again once settled: KB/connection;
//   3. for each rate Q: Q shakes/s for warmup + window seconds; over the window (whole epoch seconds)
//      CPU of primary + workers from /proc / served (won + empty from /stats) = us per shake;
//      exactness: seconds whose `shakes` equals Q.
import { sleep, sleepUntil, nowSecond } from './clock.ts';
import { LoadFleet } from './load-fleet.ts';
import type { ClientSecond, Phase, ReportMsg } from './load-protocol.ts';
import { SLOTS, lapsOf } from './schedule.ts';
import { cpuUsBetween, sampleCpu, sysUsBetween, systemBusyCores, totalRssKb, type CpuSample } from './proc.ts';
import type { Figure, Scenario, ScenarioResult } from './report.ts';
import { StubProcess, type StubSecond } from './stub-process.ts';

export const GOALS = {
  cpuUsPerShake: { goal: 15, goRef: 18.7 },
  kbPerConnection: { goal: 4, goRef: 4.1 },
} as const;

export interface StubBenchConfig {
  workers: number;
  /** Users = held connections (C of the schedule). */
  users: number;
  /** Load processes the users are split over. */
  processes: number;
  /** Shakes per second of each measured phase, in order. */
  rates: number[];
  warmupS: number;
  windowS: number;
  /** Seconds to let the idle stub, then the connected stub, settle before reading RSS. */
  idleS: number;
  settleS: number;
  generator: { rate: number; total: number };
  maxQps: number;
  sourceIps: string[];
}

interface PhaseResult {
  qps: number;
  seconds: [number, number];
  window: [number, number];
  wallMs: number;
  /** Stub CPU (primary + workers) over the window. */
  cpuUs: number;
  cpuUsByPid: Record<string, number>;
  shakes: number;
  served: number;
  won: number;
  empty: number;
  overload: number;
  usPerShake: number;
  /** Of which in the kernel (stime): on loopback that includes TCP work for the peer's packets. */
  sysUsPerShake: number;
  /** Cores' worth of CPU: the stub, the load processes, this bench, the whole machine, and everything else. */
  cores: { stub: number; load: number; bench: number; machine: number; others: number };
  exactSeconds: number;
  windowSeconds: number;
  maxDeviation: number;
  clientSent: number;
  clientMissed: number;
  clientExactSeconds: number;
  /** Whether the figures of this phase can be trusted, and if not why. */
  reliable: boolean;
  caveat: string;
  perSecond: Array<{ second: number; shakes: number; served: number; won: number; overload: number; clientSent: number; clientMissed: number }>;
}

/** Others' CPU (cores) above which a phase is flagged: the machine is shared and has 2 cores. */
const BUSY_OTHERS_CORES = 0.25;

export function stubScenario(cfg: StubBenchConfig): Scenario {
  const name = `stub-w${cfg.workers}`;
  const perRate = cfg.warmupS + cfg.windowS;
  return {
    name,
    // connecting takes ~1 ms per user on this machine when it is quiet, several times that when busy
    estimateMs: (cfg.idleS + cfg.users / 1000 + cfg.settleS + 3 + perRate * cfg.rates.length + 8) * 1000,
    run: (log) => runStubBench(name, cfg, log),
  };
}

function sumBySecond(reports: ReportMsg[]): Map<number, ClientSecond> {
  const by = new Map<number, ClientSecond>();
  for (const r of reports) {
    for (const s of r.seconds) {
      const acc = by.get(s.second) ?? { second: s.second, sent: 0, missed: 0, won: 0, empty: 0, overload: 0 };
      acc.sent += s.sent;
      acc.missed += s.missed;
      acc.won += s.won;
      acc.empty += s.empty;
      acc.overload += s.overload;
      by.set(s.second, acc);
    }
  }
  return by;
}

/** Which sampled pids are whose: the stub's first, then the load processes', then this process. */
interface PidLayout {
  pids: number[];
  stub: number;
  load: number;
}

function coresOf(us: number[], from: number, to: number, ms: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += us[i];
  return sum / 1000 / ms;
}

function measurePhase(
  p: Phase,
  windowFrom: number,
  layout: PidLayout,
  a: CpuSample,
  b: CpuSample,
  stubSeconds: StubSecond[],
  client: Map<number, ClientSecond>,
): PhaseResult {
  const us = cpuUsBetween(a, b);
  const ms = b.atMs - a.atMs;
  const { stub: nStub, load: nLoad } = layout;
  const sys = sysUsBetween(a, b);
  let cpuUs = 0;
  let sysUs = 0;
  for (let i = 0; i < nStub; i++) {
    cpuUs += us[i];
    sysUs += sys[i];
  }
  const machine = systemBusyCores(a, b);
  const cores = {
    stub: coresOf(us, 0, nStub, ms),
    load: coresOf(us, nStub, nStub + nLoad, ms),
    bench: coresOf(us, nStub + nLoad, us.length, ms),
    machine,
    others: 0,
  };
  cores.others = Math.max(0, machine - cores.stub - cores.load - cores.bench);
  const bySecond = new Map(stubSeconds.map((s) => [s.second, s]));
  const res: PhaseResult = {
    qps: p.qps,
    seconds: [p.from, p.to],
    window: [windowFrom, p.to],
    wallMs: Math.round(ms),
    cpuUs: Math.round(cpuUs),
    cpuUsByPid: Object.fromEntries(layout.pids.slice(0, nStub).map((pid, i) => [String(pid), Math.round(us[i])])),
    shakes: 0,
    served: 0,
    won: 0,
    empty: 0,
    overload: 0,
    usPerShake: NaN,
    sysUsPerShake: NaN,
    cores,
    exactSeconds: 0,
    windowSeconds: p.to - windowFrom,
    maxDeviation: 0,
    clientSent: 0,
    clientMissed: 0,
    clientExactSeconds: 0,
    reliable: true,
    caveat: '',
    perSecond: [],
  };
  for (let s = windowFrom; s < p.to; s++) {
    const st = bySecond.get(s);
    const cl = client.get(s);
    const shakes = st?.shakes ?? 0;
    const served = st ? st.won + st.empty : 0;
    res.shakes += shakes;
    res.served += served;
    res.won += st?.won ?? 0;
    res.empty += st?.empty ?? 0;
    res.overload += st?.overload ?? 0;
    res.clientSent += cl?.sent ?? 0;
    res.clientMissed += cl?.missed ?? 0;
    if (st && shakes === p.qps) res.exactSeconds++;
    if ((cl?.sent ?? 0) === p.qps) res.clientExactSeconds++;
    res.maxDeviation = Math.max(res.maxDeviation, Math.abs(shakes - p.qps));
    res.perSecond.push({ second: s, shakes, served, won: st?.won ?? 0, overload: st?.overload ?? 0, clientSent: cl?.sent ?? 0, clientMissed: cl?.missed ?? 0 });
  }
  res.usPerShake = res.served > 0 ? cpuUs / res.served : NaN;
  res.sysUsPerShake = res.served > 0 ? sysUs / res.served : NaN;
  const why: string[] = [];
  if (res.clientExactSeconds < res.windowSeconds) why.push(`load generator fell behind (${res.clientMissed} shakes missed)`);
  if (cores.others > BUSY_OTHERS_CORES) why.push(`other processes used ${cores.others.toFixed(2)} of the cores`);
  res.reliable = why.length === 0;
  res.caveat = why.join('; ');
  return res;
}

async function runStubBench(name: string, cfg: StubBenchConfig, log: (line: string) => void): Promise<ScenarioResult> {
  const users = cfg.users;
  for (const q of cfg.rates) if (lapsOf(q, users) > SLOTS) throw new Error(`${q} shakes/s is more than ${SLOTS} per user per second for ${users} users`);
  log(`${name}: starting the stub with ${cfg.workers} worker(s)`);
  const stub = await StubProcess.start({ workers: cfg.workers, maxQps: cfg.maxQps }, log);
  let fleet: LoadFleet | undefined;
  try {
    const pids = stub.pids;
    await sleep(cfg.idleS * 1000);
    const idleRssKb = totalRssKb(pids);
    log(`${name}: idle RSS ${(idleRssKb / 1024).toFixed(1)} MiB (pids ${pids.join(' ')}); connecting ${users} users from ${cfg.processes} load processes via ${cfg.sourceIps.join(',')}`);

    const started = await LoadFleet.start({ url: stub.wsUrl, users, processes: cfg.processes, sourceIps: cfg.sourceIps, connectTimeoutMs: 90_000, log });
    fleet = started.fleet;
    const ready = started.ready;
    log(`${name}: ${ready.loggedIn} logged in, ${ready.failed} failed, ${ready.retries} retries in ${ready.ms} ms`);
    if (ready.loggedIn !== users) throw new Error(`only ${ready.loggedIn} of ${users} users logged in (${ready.failed} failed)`);

    const settleA = sampleCpu(pids);
    await sleep(cfg.settleS * 1000);
    const settleB = sampleCpu(pids);
    const settleMachineCores = systemBusyCores(settleA, settleB);
    const heldRssKb = totalRssKb(pids);
    const heldIdleCpuMsPerS = cpuUsBetween(settleA, settleB).reduce((x, y) => x + y, 0) / (settleB.atMs - settleA.atMs);
    const held = await stub.stats(nowSecond() - 1);
    const kbPerConnection = (heldRssKb - idleRssKb) / users;
    log(`${name}: held RSS ${(heldRssKb / 1024).toFixed(1)} MiB, ${kbPerConnection.toFixed(2)} KB/connection, stub says ${held.connections} connections`);

    // The schedule: back-to-back phases starting two seconds from now.
    const perRate = cfg.warmupS + cfg.windowS;
    const start = nowSecond() + 2;
    const phases: Phase[] = cfg.rates.map((qps, i) => ({ qps, from: start + i * perRate, to: start + (i + 1) * perRate }));
    fleet.run(phases);
    const generator = await stub.generator(cfg.generator.rate, cfg.generator.total);

    const layout: PidLayout = { pids: [...pids, ...fleet.pids, process.pid], stub: pids.length, load: fleet.pids.length };
    const samples: Array<[CpuSample, CpuSample]> = [];
    for (const p of phases) {
      log(`${name}: ${p.qps} shakes/s over seconds ${p.from}..${p.to - 1}, window from ${p.from + cfg.warmupS}`);
      await sleepUntil((p.from + cfg.warmupS) * 1000 + 5);
      const a = sampleCpu(layout.pids);
      await sleepUntil(p.to * 1000 + 5);
      samples.push([a, sampleCpu(layout.pids)]);
    }
    const loadedRssKb = totalRssKb(pids);
    const last = phases[phases.length - 1].to - 1;
    const stats = await stub.statsThrough(phases[0].from - 1, last, 6000);
    // Replies may still be in flight when the stub is behind: wait (bounded) until all are in.
    let reports = await fleet.report();
    for (let i = 0; i < 10 && reports.some((r) => r.totals.sent > r.totals.won + r.totals.empty + r.totals.overload); i++) {
      await sleep(500);
      reports = await fleet.report();
    }
    const client = sumBySecond(reports);
    const audit = await stub.audit();

    const results = phases.map((p, i) => measurePhase(p, p.from + cfg.warmupS, layout, samples[i][0], samples[i][1], stats.seconds, client));
    const totals = { sent: 0, missed: 0, won: 0, empty: 0, overload: 0, errorFrames: 0, badFrames: 0, closed: 0, maxLateMs: 0, cpuUs: 0 };
    for (const r of reports) {
      for (const k of ['sent', 'missed', 'won', 'empty', 'overload', 'errorFrames', 'badFrames', 'closed'] as const) totals[k] += r.totals[k];
      totals.maxLateMs = Math.max(totals.maxLateMs, r.maxLateMs);
      totals.cpuUs += r.cpuUs;
    }
    const answered = totals.won + totals.empty + totals.overload;

    const w = `${cfg.workers}w`;
    const figures: Figure[] = [];
    for (const r of results) {
      figures.push({
        id: `stub.${w}.cpuUsPerShake.${r.qps}`,
        label: `stub ${w} CPU per served shake @${r.qps / 1000}k/s`,
        value: r.usPerShake,
        unit: 'us',
        ...GOALS.cpuUsPerShake,
        note: `${(r.usPerShake - r.sysUsPerShake).toFixed(1)} user + ${r.sysUsPerShake.toFixed(1)} sys; ${r.served} served in ${r.windowSeconds} s; cores: stub ${r.cores.stub.toFixed(2)}, load ${r.cores.load.toFixed(2)}, others ${r.cores.others.toFixed(2)}`,
        caveat: r.caveat || undefined,
      });
    }
    figures.push({
      id: `stub.${w}.kbPerConnection`,
      label: `stub ${w} RSS per held connection`,
      value: kbPerConnection,
      unit: 'KB',
      ...GOALS.kbPerConnection,
      note: `(${heldRssKb} - ${idleRssKb} KiB) / ${users}, ${cfg.settleS} s after the last login`,
    });
    figures.push({
      id: `stub.${w}.kbPerConnectionAfterLoad`,
      label: `stub ${w} RSS per connection after load`,
      value: (loadedRssKb - idleRssKb) / users,
      unit: 'KB',
      note: `(${loadedRssKb} - ${idleRssKb} KiB) / ${users}, at the end of the last phase (no goal: for information)`,
    });
    for (const r of results) {
      figures.push({
        id: `stub.${w}.exactSeconds.${r.qps}`,
        label: `stub ${w} exact seconds @${r.qps / 1000}k/s`,
        value: r.exactSeconds,
        unit: `/ ${r.windowSeconds}`,
        pass: r.exactSeconds === r.windowSeconds,
        note: `max deviation ${r.maxDeviation}; load sent exactly ${r.qps} in ${r.clientExactSeconds}/${r.windowSeconds} s`,
        caveat: r.caveat || undefined,
      });
    }

    return {
      name,
      figures,
      details: {
        config: cfg,
        pids: { primary: stub.ready.pid, workers: stub.ready.workers, loadClients: fleet.pids },
        connect: ready,
        rss: { idleKb: idleRssKb, heldKb: heldRssKb, afterLoadKb: loadedRssKb, kbPerConnection, kbPerConnectionAfterLoad: (loadedRssKb - idleRssKb) / users },
        heldIdleCpuMsPerS,
        settleMachineCores,
        stubConnections: held.connections,
        phases: results,
        generator,
        audit,
        client: { ...totals, answered, unanswered: totals.sent - answered, cpuUsPerShake: totals.sent ? totals.cpuUs / totals.sent : NaN },
      },
    };
  } finally {
    if (fleet) await fleet.stop();
    await stub.stop();
  }
}
