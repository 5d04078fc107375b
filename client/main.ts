// `hongbao agent`: the parent process validates options, runs the pre-flight checks, measures the
// clock offset (NTP), forks the worker processes (node:cluster: each re-runs this command and waits
// for its 'init' message), serves the control endpoint, merges the workers' per-second records,
// reports the connect phase on stderr and pushes samples to the controller.
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
import cluster, { type Worker } from 'node:cluster';
import { createSocket } from 'node:dgram';
import { hostname } from 'node:os';
import { assertSafeListen } from '../common/auth.ts';
import { SyncedClock, parseNtpTarget, preciseClock } from '../common/clock.ts';
import { ConfigError } from '../common/errors.ts';
import { helpText, parseOptions } from '../common/options.ts';
import { PromText, snakeCase } from '../common/prometheus.ts';
import { addChange, countFiring, moduloExact, moduloRate, qpsAt, type QpsChange } from '../common/schedule.ts';
import { share } from '../common/split.ts';
import { NONE_FINAL, finalAcross, finalAtStartOf, settledUpTo } from '../common/seconds.ts';
import { build } from './control.ts';
import type { ConnReport, ToParent, ToWorker, WorkerInit } from './ipc.ts';
import { agentCommand, compactSourceIps, crossCheck, expandSourceIps, userRange, type AgentOptions } from './options.ts';
import { checkSourceIps, defaultWorkers, preflight, readHostFacts } from './preflight.ts';
import { autobindReserve, yieldToPrimary } from '../common/limits.ts';
import { listenOrExplain } from '../common/addresses.ts';
import { sendToParent } from '../common/parent.ts';
import { ControllerPush, MAX_QUEUED_SAMPLES, type Sample } from './push.ts';
import { AgentStats, R, REC_FIELDS, entry } from './stats.ts';
import { AgentWorker } from './worker.ts';

export interface Io {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}

/** Hidden test option: a fake error of the local clock in ms (simulates a VM whose clock is off). */
export const SKEW_ENV = 'HONGBAO_AGENT_CLOCK_SKEW_MS';
/** Upper bounds (seconds) of the latency histogram of /metrics. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
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

interface Slot {
  index: number;
  init: WorkerInit;
  worker: Worker | undefined;
  conn: ConnReport | undefined;
  restarts: number;
  /** Last second whose sends this worker has reported final (or the parent has counted missed). */
  upTo: number;
  /**
   * Its worker died: until the replacement takes over (from second `resumeAt`), every due shake of
   * its users is missed, and the parent counts them so each second still adds up to the share.
   */
  orphaned: boolean;
  resumeAt: number | undefined;
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

  // ---- schedule --------------------------------------------------------------------------------
  let changes: QpsChange[] = [{ at: 0, qps: o.qps }];
  const describeRate = (q: number) =>
    o.rule === 'modulo' && !moduloExact(o.totalUsers, q)
      ? `; modulo rule: ${q} does not divide ${o.totalUsers}, the fleet really fires ${moduloRate(o.totalUsers, q).toFixed(2)}/s on average (use --rule window for exact)`
      : '';
  io.stderr(`${tag} users ${first}..${first + count - 1} of ${o.totalUsers}, rule ${o.rule}, mode ${o.mode}${o.mode === 'spread' ? ` over ${o.spreadMs} ms in steps of ${o.spreadStep} ms` : ''}, fleet qps ${o.qps}${describeRate(o.qps)}`);

  // ---- workers ---------------------------------------------------------------------------------
  const stats = new AgentStats();
  const startSecond = Math.floor(clock.now() / 1000);
  const slots: Slot[] = [];
  let stopping = false;
  let localBase = 0;
  for (let i = 0; i < workers; i++) {
    const n = share(count, workers, i);
    slots.push({
      index: i,
      restarts: 0,
      upTo: NONE_FINAL,
      orphaned: false,
      resumeAt: undefined,
      worker: undefined,
      conn: undefined,
      init: {
        t: 'init',
        index: i,
        server: o.server,
        first: first + localBase,
        count: n,
        localBase,
        sourceIps,
        // Explicit local ports come from above the reserve the host keeps for its other connections.
        portLow: facts.portLow + autobindReserve(facts),
        portHigh: facts.portHigh,
        totalUsers: o.totalUsers,
        rule: o.rule,
        mode: o.mode,
        spreadMs: o.spreadMs,
        spreadStepMs: o.spreadStep,
        ramp: Math.max(1, Math.floor(o.ramp / workers)),
        connectTimeoutMs: o.connectTimeout,
        wsImpl: o.wsImpl,
        noticeAnswersShake: o.noticeAnswersShake,
        skewMs,
        offsetMs: 0,
        changes,
      },
    });
    localBase += n;
  }
  const broadcast = (msg: ToWorker) => {
    for (const s of slots) if (s.worker?.isConnected()) s.worker.send(msg);
  };
  const nowSecond = () => Math.floor(clock.now() / 1000);
  /** Counts the due shakes of an orphaned slot's users missed, second by second up to `last`. */
  const countOrphaned = (slot: Slot, last: number) => {
    if (!slot.orphaned) return;
    const end = Math.min(last, slot.resumeAt === undefined ? last : slot.resumeAt - 1);
    const missed = new Array<number>(REC_FIELDS.length).fill(0);
    for (let s = slot.upTo + 1; s <= end; s++) {
      missed[R.missed] = countFiring(o.rule, o.totalUsers, qpsAt(changes, s), s, slot.init.first, slot.init.count);
      stats.merge(s, missed, '');
      slot.upTo = s;
    }
    if (slot.resumeAt !== undefined && slot.upTo >= slot.resumeAt - 1) slot.orphaned = false;
  };
  const fork = (slot: Slot) => {
    const w = cluster.fork({ HONGBAO_AGENT_WORKER_INDEX: String(slot.index) });
    slot.worker = w;
    yieldToPrimary(w.process.pid);
    w.on('message', (msg: ToParent) => {
      if (msg.t === 'sec') {
        countOrphaned(slot, msg.upTo);
        for (const [second, counters, hist, late] of msg.recs) stats.merge(second, counters, hist, late);
        slot.conn = msg.conn;
        slot.upTo = Math.max(slot.upTo, msg.upTo);
      }
    });
    w.on('online', () => {
      // A replacement takes its users over from the next second; the parent counts the gap.
      if (slot.orphaned) slot.resumeAt = nowSecond() + 1;
      w.send({ ...slot.init, offsetMs: clock.offsetMs, changes, ...(slot.orphaned ? { resumeAt: slot.resumeAt } : {}) } satisfies WorkerInit);
    });
    w.on('exit', (code, signal) => {
      if (slot.worker === w) slot.worker = undefined;
      slot.conn = undefined;
      if (stopping) return;
      // What it had not reported final is lost with it: from there on its due shakes are missed.
      if (!slot.orphaned && slot.upTo === NONE_FINAL) slot.upTo = finalAtStartOf(nowSecond());
      slot.orphaned = true;
      slot.resumeAt = undefined;
      slot.restarts++;
      io.stderr(`${tag} worker ${slot.index} (pid ${w.process.pid}) died (${signal ?? `exit ${code}`}); restarting it, its users reconnect`);
      setTimeout(() => !stopping && fork(slot), 500);
    });
  };
  // A small young generation keeps the workers' resident memory per connection down (their
  // allocation rate is low once connected); the cost is more, shorter scavenges. Together with the
  // full GC after the connect phase (worker.ts) this takes ~17 KB to ~9 KB resident per connection.
  cluster.setupPrimary({ execArgv: [...process.execArgv.filter((a) => !a.startsWith('--max-semi-space-size')), '--max-semi-space-size=' + SEMI_SPACE_MB] });
  for (const s of slots) fork(s);

  clock.startResync(o.ntpResync * 1000, (s) => {
    broadcast({ t: 'offset', offsetMs: clock.offsetMs });
    if (!s.synced || s.lastError) io.stderr(`${tag} NTP resync: ${s.lastError ?? 'no answer'}; offset stays ${s.offsetMs} ms`);
  });

  // ---- control endpoint ------------------------------------------------------------------------
  const connections = () => slots.reduce((a, s) => a + (s.conn?.connected ?? 0), 0);
  const setQps = (qps: number, at: number) => {
    changes = addChange(changes, { at, qps });
    // Keep the history bounded: the last 10 minutes of changes (samples and /stats look back),
    // the change in effect before them, and the future ones.
    const horizon = nowSecond() - 600;
    const old = changes.filter((c) => c.at <= horizon);
    changes = [...old.slice(-1), ...changes.filter((c) => c.at > horizon)];
    broadcast({ t: 'qps', changes });
    io.stderr(`${tag} fleet qps -> ${qps} from second ${at}${describeRate(qps)}`);
  };
  /** Last second every worker has reported (or the parent counted missed for a dead one): /stats and the controller see no half-counted second. */
  const completeUpTo = () => {
    for (const s of slots) countOrphaned(s, finalAtStartOf(nowSecond()));
    return finalAcross(
      nowSecond(),
      slots.map((s) => s.upTo),
    );
  };
  const statsBody = (since: number | undefined) => {
    const upTo = completeUpTo();
    const from = Math.max(since ?? upTo - 59, startSecond);
    const c = clock.status();
    return {
      id,
      connections: connections(),
      qps: qpsAt(changes, nowSecond()),
      offsetMs: c.offsetMs,
      uncertaintyMs: c.uncertaintyMs,
      clock: c.source,
      rate: o.rule === 'modulo' ? moduloRate(o.totalUsers, qpsAt(changes, nowSecond())) : qpsAt(changes, nowSecond()),
      seconds: stats.range(Math.max(from, upTo - 599), upTo),
    };
  };
  const health = () => {
    const c = clock.status();
    const ws = slots.map((s) => ({ index: s.index, pid: s.worker?.process.pid ?? 0, alive: !!s.worker && !s.worker.isDead(), users: s.init.count, ...(s.conn ?? {}), restarts: s.restarts }));
    return {
      ok: ws.every((w) => w.alive),
      id,
      pid: process.pid,
      users: count,
      connections: connections(),
      qps: qpsAt(changes, nowSecond()),
      clock: c,
      workers: ws,
    };
  };
  const metrics = () => {
    const p = new PromText();
    const uncertaintyMs = clock.status().uncertaintyMs;
    p.gauge('hongbao_agent_connections', 'Logged-in connections.', connections());
    p.gauge('hongbao_agent_users', 'Users of this agent.', count);
    p.gauge('hongbao_agent_qps', 'Fleet QPS in effect.', qpsAt(changes, nowSecond()));
    p.gauge('hongbao_agent_clock_offset_seconds', 'Offset added to the local clock (NTP).', clock.offsetMs / 1000);
    p.gauge('hongbao_agent_clock_uncertainty_seconds', 'Half the round trip of the best NTP sample (NaN: not synchronised).', uncertaintyMs < 0 ? NaN : uncertaintyMs / 1000);
    REC_FIELDS.forEach((f, i) => p.counter(`hongbao_agent_${snakeCase(f)}_total`, `Sum of per-second ${f}.`, stats.totals[i]));
    p.histogram('hongbao_agent_shake_latency_seconds', 'Reply time minus scheduled send time of every answered shake.', stats.latency, 1e-6, LATENCY_BUCKETS);
    return p.text();
  };
  const app = build({ token: o.token, totalUsers: o.totalUsers, now: () => clock.now(), setQps, qps: () => qpsAt(changes, nowSecond()), stats: statsBody, health, metrics });
  try {
    await listenOrExplain('agent', 'control-port', 'TCP', o.controlHost, o.controlPort, () => app.listen({ port: o.controlPort, host: o.controlHost }));
  } catch (err) {
    stopping = true;
    for (const s of slots) s.worker?.process.kill();
    if (err instanceof ConfigError) throw err;
    io.stderr(`${tag} control endpoint cannot listen on ${o.controlHost}:${o.controlPort}: ${(err as Error).message}`);
    return 1;
  }
  const controlPort = (app.server.address() as { port: number }).port;
  // A wildcard listen address is no address to call back: advertise the one that routes to the controller.
  const advertised = o.controller && isWildcard(o.controlHost) ? await localAddressTowards(new URL(o.controller).hostname) : o.controlHost;
  const controlUrl = `http://${advertised.includes(':') ? `[${advertised}]` : advertised}:${controlPort}`;
  io.stdout(JSON.stringify({ event: 'listening', id, controlPort, controlUrl, pid: process.pid, workers: slots.map((s) => s.worker?.process.pid ?? 0) }));

  // ---- once a second: connect-phase progress, controller samples -------------------------------
  let lastPushed = -1;
  const sampleOf = (s: number): Sample => {
    const r = stats.get(s);
    const c = clock.status();
    return { id, ...entry(s, r), qps: qpsAt(changes, s), connections: connections(), offsetMs: c.offsetMs, uncertaintyMs: c.uncertaintyMs, hist: r && r.h.total ? r.h.encode() : '' };
  };
  /** Seconds already pushed, from `from` on (at most a queue's worth): for a controller that restarted. */
  const replay = (from: number): Sample[] => {
    const out: Sample[] = [];
    for (let s = Math.max(from, startSecond, lastPushed - MAX_QUEUED_SAMPLES + 1); s <= lastPushed; s++) out.push(sampleOf(s));
    return out;
  };
  const push = o.controller
    ? new ControllerPush(
        o.controller,
        id,
        () => ({ id, controlUrl, users: { first, count }, totalUsers: o.totalUsers, workers, sourceIps: sourceIps.length, sourceAddresses: compactSourceIps(sourceIps).slice(0, 256), rule: o.rule, mode: o.mode, pid: process.pid, qpsChanges: changes }),
        o.token,
        io,
        replay,
      )
    : undefined;
  const started = Date.now();
  let announced = false;
  let lastLogins = 0;
  let lastProgress = '';
  const everySecond = setInterval(() => {
    const reports = slots.map((s) => s.conn).filter((c): c is ConnReport => !!c);
    const connected = reports.reduce((a, c) => a + c.connected, 0);
    const logins = reports.reduce((a, c) => a + c.logins, 0);
    const failures = reports.reduce((a, c) => a + c.failures, 0);
    if (!announced || connected < count || lastProgress !== '') {
      const rate = Math.max(0, logins - lastLogins);
      const ipErr = new Map<string, number>();
      for (const c of reports) c.ipErrors.forEach((n, k) => n && ipErr.set(sourceIps[k] ?? 'default', (ipErr.get(sourceIps[k] ?? 'default') ?? 0) + n));
      const left = count - connected;
      const eta = left === 0 ? 0 : rate > 0 ? Math.ceil(left / rate) : -1;
      const errText = ipErr.size ? ` errors by source IP: ${[...ipErr].map(([ip, n]) => `${ip}=${n}`).join(' ')}; last: ${reports.find((c) => c.lastError)?.lastError ?? ''}` : '';
      const inFlight = reports.reduce((a, c) => a + c.connecting, 0);
      const window = reports.reduce((a, c) => a + c.window, 0);
      const line = `${tag} connected ${connected}/${count} (+${rate}/s) in flight ${inFlight} (window ${window}) failed ${failures}${errText}${eta > 0 ? `, ETA ${eta} s` : eta < 0 ? ', ETA unknown' : ''}`;
      if (line !== lastProgress) io.stderr(line);
      // Once everyone is (back) in, stop printing until someone drops again.
      lastProgress = connected === count && announced ? '' : line;
      if (!announced && connected === count) {
        announced = true;
        const seconds = (Date.now() - started) / 1000;
        io.stderr(`${tag} all ${count} users logged in after ${seconds.toFixed(1)} s (${failures} failed attempts retried)`);
        io.stdout(JSON.stringify({ event: 'connected', id, connected, failures, seconds }));
      }
    }
    lastLogins = logins;
    // Until every worker has reported a second there is nothing whole to push.
    const upTo = settledUpTo(completeUpTo());
    if (push && upTo >= startSecond) {
      // Every second once all workers reported it, with one more second for its replies; a second
      // that changes after it was pushed (a slow reply) is pushed again and amends it at the controller.
      if (lastPushed < 0) lastPushed = upTo - 1;
      const due = new Set(stats.takeChanged(upTo).filter((s) => s > upTo - 60));
      for (let s = lastPushed + 1; s <= upTo; s++) due.add(s);
      lastPushed = Math.max(lastPushed, upTo);
      for (const s of [...due].sort((a, b) => a - b)) void push.tick(sampleOf(s));
    }
  }, 1000);

  return new Promise<number>((resolve) => {
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      io.stderr(`${tag} ${signal}, stopping`);
      clearInterval(everySecond);
      clock.stop();
      const exits = slots.map((s) => s.worker).filter((w): w is Worker => !!w).map((w) => new Promise((r) => (w.isDead() ? r(null) : w.once('exit', r))));
      broadcast({ t: 'stop' });
      await app.close();
      await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 3000))]);
      for (const s of slots) if (s.worker && !s.worker.isDead()) s.worker.process.kill('SIGKILL');
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
