// Scenario "stub-connect": how fast the stub accepts, completes the WebSocket handshake and answers
// the login, with 1 and with N workers, and what it costs per connection.
//   1. start the stub (N workers; --acceptors as configured), let it idle;
//   2. the bench's load processes (not the agent) open C connections as fast as they may (at most
//      `maxInFlight` handshakes in flight per process: a closed loop, no SYN flood) and log each in;
//   3. connections/s = C / wall clock of the slowest process; the stub's CPU over the same span / C
//      = CPU per connection (user and sys apart); the peak of the stub's per-second logins; from
//      /health, how many connections moved from the accepting worker to the one owning the SET.
// With N workers the difference to 1 worker per connection is what the multi-process path costs
// (accepting in several processes, and the hand-over of a socket to the SET's owner through the
// primary); the note says what fraction of connections moved.
import { sleep, nowSecond } from './clock.ts';
import { LoadFleet } from './load-fleet.ts';
import { cpuUsBetween, sampleCpu, sysUsBetween, systemBusyCores } from './proc.ts';
import type { Figure, Scenario, ScenarioResult } from './report.ts';
import { StubProcess } from './stub-process.ts';

export interface StubConnectConfig {
  workers: number;
  /** --acceptors for the stub (undefined: its default). */
  acceptors?: number;
  users: number;
  processes: number;
  maxInFlight: number;
  idleS: number;
  sourceIps: string[];
}

export function stubConnectScenario(cfg: StubConnectConfig): Scenario {
  const name = `stub-connect-w${cfg.workers}`;
  return {
    name,
    // worker start-up (~0.3 s of CPU each on 2 cores), then ~0.5-1 ms per connection when busy
    estimateMs: (5 + cfg.workers * 0.3 + cfg.idleS + cfg.users / 800 + 8) * 1000,
    run: (log) => runStubConnect(name, cfg, log),
  };
}

async function runStubConnect(name: string, cfg: StubConnectConfig, log: (line: string) => void): Promise<ScenarioResult> {
  log(`${name}: starting the stub with ${cfg.workers} worker(s)${cfg.acceptors ? `, ${cfg.acceptors} accepting` : ''}`);
  const stub = await StubProcess.start(
    { workers: cfg.workers, maxQps: 65_000, timeoutMs: 60_000, args: cfg.acceptors ? ['--acceptors', String(cfg.acceptors)] : [] },
    log,
  );
  let fleet: LoadFleet | undefined;
  try {
    await sleep(cfg.idleS * 1000);
    const firstSecond = nowSecond();
    const pids = stub.pids;
    const a = sampleCpu(pids);
    const started = await LoadFleet.start({
      url: stub.wsUrl,
      users: cfg.users,
      processes: cfg.processes,
      sourceIps: cfg.sourceIps,
      maxInFlight: cfg.maxInFlight,
      connectTimeoutMs: 120_000,
      log,
    });
    const b = sampleCpu(pids);
    fleet = started.fleet;
    const ready = started.ready;
    if (ready.loggedIn !== cfg.users) throw new Error(`only ${ready.loggedIn} of ${cfg.users} users logged in (${ready.failed} failed)`);
    const us = cpuUsBetween(a, b).reduce((x, y) => x + y, 0);
    const sys = sysUsBetween(a, b).reduce((x, y) => x + y, 0);
    const primaryUs = cpuUsBetween(a, b)[0];
    const wallMs = b.atMs - a.atMs;
    const machineCores = systemBusyCores(a, b);
    await sleep(2500);
    const stats = await stub.stats(firstSecond);
    const peakLogins = Math.max(0, ...stats.seconds.map((s) => s.logins));
    const health = await stub.health();
    const moved = health.workers.reduce((n, w) => n + (w.adopted ?? 0), 0);
    const rate = cfg.users / (ready.ms / 1000);
    const w = `${cfg.workers}w`;
    const perConn = us / cfg.users;
    log(`${name}: ${cfg.users} logged in in ${ready.ms} ms (${rate.toFixed(0)}/s), stub ${perConn.toFixed(0)} us CPU per connection, ${moved} moved to their SET's worker`);
    const figures: Figure[] = [
      {
        id: `stub.${w}.connectsPerS`,
        label: `stub ${w} accept+handshake+login rate`,
        value: rate,
        unit: 'conn/s',
        note: `${cfg.users} users from ${cfg.processes} load processes (<= ${cfg.maxInFlight} handshakes in flight each) in ${ready.ms} ms; peak ${peakLogins} logins/s; ${ready.retries} retries; machine ${machineCores.toFixed(2)} cores busy`,
      },
      {
        id: `stub.${w}.cpuUsPerConnection`,
        label: `stub ${w} CPU per new connection`,
        value: perConn,
        unit: 'us',
        note: `${((us - sys) / cfg.users).toFixed(0)} user + ${(sys / cfg.users).toFixed(0)} sys; primary ${(primaryUs / cfg.users).toFixed(0)} us; ${moved} of ${cfg.users} (${((100 * moved) / cfg.users).toFixed(0)} %) handed to the worker owning their SET`,
      },
    ];
    return {
      name,
      figures,
      details: {
        config: cfg,
        pids: { primary: stub.ready.pid, workers: stub.ready.workers },
        connect: ready,
        wallMs,
        stubCpuUs: us,
        stubSysUs: sys,
        primaryCpuUs: primaryUs,
        peakLogins,
        moved,
        health,
      },
    };
  } finally {
    if (fleet) await fleet.stop();
    await stub.stop();
  }
}
