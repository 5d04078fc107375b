// `hongbao agent`: the parent process validates options, runs the pre-flight checks, measures the
// clock offset (NTP), forks the worker processes (common/supervisor.ts; node:cluster: each re-runs
// this command and waits for its 'init' message), serves the control endpoint from what it knows
// (state.ts: the share, the QPS timeline, the merged per-second records), reports the connect
// phase on stderr (progress.ts) and pushes samples to the controller (push.ts).
//
// stdout carries machine-readable events, one JSON line each: {"event":"listening",...} once the
// control endpoint is up, {"event":"connected",...} when every user has logged in once.
//
// Decisions (beyond what the README specifies):
// - --rule defaults to window (exact for any QPS); modulo is there for fidelity with the original
//   and the agent prints the rate it really gives when QPS does not divide N.
// - --ntp defaults to off: fleet VMs run chrony against the controller (provisioning), so the local
//   clock is already disciplined; --ntp HOST measures an offset on top (and must, on a VM whose
//   clock is off in a way chrony does not fix). Without NTP the agent says so on stderr.
// - --spread-ms (default 900, as designed) narrows the spread window on loaded hosts; --spread-step
//   (default 10) puts the offsets on a grid, so a worker wakes up 90 times a second rather than up
//   to 900 and the server reads several shakes per wake-up (1 gives every millisecond its own).
// - Per-second records are keyed by the *scheduled* second of a shake: sent, missed, answered,
//   won/empty/overload and latency (reply time - scheduled time, so a late send shows up as latency,
//   no coordinated omission) all belong to the second the shake was due in; claims and errors to the
//   second they happened in. GET /stats lists completed seconds (up to now - 1; replies still in
//   flight are added when they arrive); controller samples go out for second now - 2.
// - POST /qps `at` must be after the current second (the current one is partly fired already);
//   without `at` the change applies from the next second.
// - HONGBAO_AGENT_CLOCK_SKEW_MS (env only, hidden): adds a fake error to the local clock, for tests.
import cluster from 'node:cluster';
import { createSocket } from 'node:dgram';
import { hostname } from 'node:os';
import { assertSafeListen } from '../common/auth.ts';
import { SyncedClock, parseNtpTarget, preciseClock } from '../common/clock.ts';
import { ConfigError } from '../common/errors.ts';
import { helpText, parseOptions } from '../common/options.ts';
import { settledUpTo } from '../common/seconds.ts';
import { WorkerSupervisor } from '../common/supervisor.ts';
import { build } from './control.ts';
import type { ConnReport, ToParent, ToWorker } from './ipc.ts';
import { agentCommand, compactSourceIps, crossCheck, expandSourceIps, userRange, type AgentOptions } from './options.ts';
import { checkSourceIps, defaultWorkers, preflight, readHostFacts } from './preflight.ts';
import { autobindReserve } from '../common/limits.ts';
import { listenOrExplain } from '../common/addresses.ts';
import { sendToParent } from '../common/parent.ts';
import { ControllerPush } from './push.ts';
import { ConnectProgress } from './progress.ts';
import { AgentState } from './state.ts';
import { AgentWorker } from './worker.ts';

export interface Io {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}

/** Hidden test option: a fake error of the local clock in ms (simulates a VM whose clock is off). */
export const SKEW_ENV = 'HONGBAO_AGENT_CLOCK_SKEW_MS';
/**
 * Young-generation semi-space of the workers in MB. Measured here with 10000 connections per
 * worker: 16 (V8's default) -> 170 MB resident, 4 -> 140 MB, 2 -> 139 MB but ~10 % more CPU per
 * connect. 4 is the knee.
 */
const SEMI_SPACE_MB = 4;

/** Runs the agent until SIGINT/SIGTERM; resolves to the exit code. */
export async function runAgent(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  if (cluster.isWorker) return runWorker();
  const { options: o, help } = parseOptions<AgentOptions>(agentCommand, argv, env);
  if (help) {
    io.stdout(helpText(agentCommand));
    return 0;
  }
  crossCheck(o);
  const skewMs = Number(env[SKEW_ENV] ?? 0);
  if (!Number.isFinite(skewMs)) throw new ConfigError(`hongbao agent: ${SKEW_ENV} must be a number of ms, got ${JSON.stringify(env[SKEW_ENV])}`);
  return runParent(o, skewMs, io);
}

/** Worker side: wait for the slice, then run until the parent goes away or says stop. */
function runWorker(): Promise<number> {
  return new Promise<number>((resolve) => {
    let worker: AgentWorker | undefined;
    const send = (msg: ToParent) => sendToParent(msg);
    process.on('message', (msg: ToWorker) => {
      if (msg.t === 'init') {
        worker = new AgentWorker(msg, send);
        worker.start();
      } else if (msg.t === 'stop') {
        worker?.stop();
        resolve(0);
      } else worker?.receive(msg);
    });
    process.once('SIGINT', () => undefined); // the parent decides
    process.once('SIGTERM', () => {
      worker?.stop();
      resolve(0);
    });
    process.once('disconnect', () => {
      worker?.stop();
      resolve(0);
    });
  });
}

async function runParent(o: AgentOptions, skewMs: number, io: Io): Promise<number> {
  const { first, count } = userRange(o);
  const sourceIps = expandSourceIps(o.sourceIp);
  const facts = readHostFacts();
  const workers = o.workers ?? defaultWorkers(count, facts);
  if (workers > count) throw new ConfigError(`hongbao agent: --workers ${workers} is more than the ${count} users of --users ${o.users}`);
  preflight(count, sourceIps.length, workers, facts);
  checkSourceIps(sourceIps, facts);
  assertSafeListen('agent', 'control-host', o.controlHost, o.token);
  const id = o.id ?? `${hostname()}-${first}`;
  const tag = 'hongbao agent:';

  // ---- clock -----------------------------------------------------------------------------------
  const clock = new SyncedClock(preciseClock(skewMs), parseNtpTarget(o.ntp), { samples: o.ntpSamples });
  if (clock.target) {
    await clock.sync();
    const s = clock.status();
    if (s.synced) io.stderr(`${tag} clock offset ${s.offsetMs.toFixed(3)} ms +/- ${s.uncertaintyMs.toFixed(3)} ms from ${s.source} (best of ${o.ntpSamples} samples)`);
    else io.stderr(`${tag} WARNING: no answer from ${s.source} (${s.lastError}); using the local clock until a resync succeeds`);
  } else {
    io.stderr(`${tag} --ntp off: using the local clock as is (no offset measured; keep it synchronised, e.g. with chrony)`);
  }

  // ---- the share and its workers ---------------------------------------------------------------
  const state = new AgentState(o, {
    id,
    first,
    count,
    workers,
    base: {
      server: o.server,
      sourceIps,
      // Explicit local ports come from above the reserve the host keeps for its other connections.
      portLow: facts.portLow + autobindReserve(facts),
      portHigh: facts.portHigh,
      totalUsers: o.totalUsers,
      rule: o.rule,
      mode: o.mode,
      spreadMs: o.spreadMs,
      spreadStepMs: o.spreadStep,
      connectTimeoutMs: o.connectTimeout,
      wsImpl: o.wsImpl,
      noticeAnswersShake: o.noticeAnswersShake,
      skewMs,
    },
  }, clock);
  io.stderr(`${tag} users ${first}..${first + count - 1} of ${o.totalUsers}, rule ${o.rule}, mode ${o.mode}${o.mode === 'spread' ? ` over ${o.spreadMs} ms in steps of ${o.spreadStep} ms` : ''}, fleet qps ${o.qps}${state.describeRate(o.qps)}`);

  // A small young generation keeps the workers' resident memory per connection down (their
  // allocation rate is low once connected); the cost is more, shorter scavenges. Together with the
  // full GC after the connect phase (worker.ts) this takes ~17 KB to ~9 KB resident per connection.
  cluster.setupPrimary({ execArgv: [...process.execArgv.filter((a) => !a.startsWith('--max-semi-space-size')), '--max-semi-space-size=' + SEMI_SPACE_MB] });
  const procs = new WorkerSupervisor<ToParent, ToWorker>(workers, {
    env: (index) => ({ HONGBAO_AGENT_WORKER_INDEX: String(index) }),
    online: (index) => procs.send(index, state.initFor(index)),
    message: (index, msg) => {
      if (msg.t === 'sec') state.workerReported(index, msg);
    },
    died: (index, w, how) => {
      state.workerDied(index);
      io.stderr(`${tag} worker ${index} (pid ${w.process.pid}) died (${how}); restarting it, its users reconnect`);
    },
  });
  procs.start();

  clock.startResync(o.ntpResync * 1000, (s) => {
    procs.broadcast({ t: 'offset', offsetMs: clock.offsetMs });
    if (!s.synced || s.lastError) io.stderr(`${tag} NTP resync: ${s.lastError ?? 'no answer'}; offset stays ${s.offsetMs} ms`);
  });

  // ---- control endpoint ------------------------------------------------------------------------
  const setQps = (qps: number, at: number) => {
    procs.broadcast({ t: 'qps', changes: state.setQps(qps, at) });
    io.stderr(`${tag} fleet qps -> ${qps} from second ${at}${state.describeRate(qps)}`);
  };
  const health = () => state.health(state.slots.map((s) => ({ pid: procs.pid(s.index), alive: !!procs.worker(s.index), restarts: procs.restarts[s.index] })));
  const app = build({
    token: o.token,
    totalUsers: o.totalUsers,
    now: () => clock.now(),
    setQps,
    qps: () => state.qpsNow(),
    stats: (since) => state.statsBody(since),
    health,
    metrics: () => state.metrics(),
  });
  try {
    await listenOrExplain('agent', 'control-port', 'TCP', o.controlHost, o.controlPort, () => app.listen({ port: o.controlPort, host: o.controlHost }));
  } catch (err) {
    procs.abort();
    if (err instanceof ConfigError) throw err;
    io.stderr(`${tag} control endpoint cannot listen on ${o.controlHost}:${o.controlPort}: ${(err as Error).message}`);
    return 1;
  }
  const controlPort = (app.server.address() as { port: number }).port;
  // A wildcard listen address is no address to call back: advertise the one that routes to the controller.
  const advertised = o.controller && isWildcard(o.controlHost) ? await localAddressTowards(new URL(o.controller).hostname) : o.controlHost;
  const controlUrl = `http://${advertised.includes(':') ? `[${advertised}]` : advertised}:${controlPort}`;
  io.stdout(JSON.stringify({ event: 'listening', id, controlPort, controlUrl, pid: process.pid, workers: procs.pids() }));

  // ---- once a second: connect-phase progress, controller samples -------------------------------
  let lastPushed = -1;
  const push = o.controller
    ? new ControllerPush(
        o.controller,
        id,
        () => ({ id, controlUrl, users: { first, count }, totalUsers: o.totalUsers, workers, sourceIps: sourceIps.length, sourceAddresses: compactSourceIps(sourceIps).slice(0, 256), rule: o.rule, mode: o.mode, pid: process.pid, qpsChanges: state.changes }),
        o.token,
        io,
        (from) => state.replay(from, lastPushed),
      )
    : undefined;
  const progress = new ConnectProgress(id, count, sourceIps, io, tag);
  const everySecond = setInterval(() => {
    progress.tick(state.slots.map((s) => s.conn).filter((c): c is ConnReport => !!c));
    // Until every worker has reported a second there is nothing whole to push.
    const upTo = settledUpTo(state.completeUpTo());
    if (push && upTo >= state.startSecond) {
      // Every second once all workers reported it, with one more second for its replies; a second
      // that changes after it was pushed (a slow reply) is pushed again and amends it at the controller.
      if (lastPushed < 0) lastPushed = upTo - 1;
      const due = new Set(state.stats.takeChanged(upTo).filter((s) => s > upTo - 60));
      for (let s = lastPushed + 1; s <= upTo; s++) due.add(s);
      lastPushed = Math.max(lastPushed, upTo);
      for (const s of [...due].sort((a, b) => a - b)) void push.tick(state.sampleOf(s));
    }
  }, 1000);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      io.stderr(`${tag} ${signal}, stopping`);
      clearInterval(everySecond);
      clock.stop();
      const stopped = procs.stop({ t: 'stop' }, 3000);
      await app.close();
      await stopped;
      resolve(0);
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
  });
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

/** The local address the kernel would use to reach `host` (a connected UDP socket sends nothing). */
async function localAddressTowards(host: string): Promise<string> {
  const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.connect(9, host, () => resolve());
    });
    return sock.address().address;
  } catch {
    return hostname();
  } finally {
    sock.close();
  }
}
