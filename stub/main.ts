// `hongbao stub`: the primary forks --workers processes (node:cluster) that hold the connections;
// the primary runs the HTTP API, the generator, the sending service and merges the workers'
// counters. A worker that dies is reported and replaced.
//
// Who accepts: the first --acceptors workers accept on the shared WebSocket port themselves
// (node:cluster SCHED_NONE: the kernel hands each connection to one of them; the primary never
// touches it). Each SET lives in one worker (sets.ts), so once a login names the user, a connection
// accepted by a worker that does not own the user's SET is released and its socket handle passed,
// through the primary, to the owner, which answers the login and serves it from then on.
import cluster from 'node:cluster';
import type { Server, Socket } from 'node:net';
import { adoptLite, createLiteServer } from '../common/wslite.ts';
import { RESERVED_FDS, openFileLimit } from '../common/limits.ts';
import { WorkerSupervisor } from '../common/supervisor.ts';
import { MAX_MESSAGE_BYTES } from '../common/wire.ts';
import { assertIface, assertListenable, listenOrExplain } from '../common/addresses.ts';
import { assertSafeListen } from '../common/auth.ts';
import { sendToParent } from '../common/parent.ts';
import { F } from './fields.ts';
import { helpText, parseOptions } from '../common/options.ts';
import { ConfigError } from '../common/errors.ts';
import { StubCore } from './core.ts';
import { build } from './http.ts';
import type { ToPrimary, ToWorker } from './ipc.ts';
import { chooseIface } from './nic.ts';
import { stubCommand, type StubOptions } from './options.ts';
import { StubWorker, liteHandler, type HandOff } from './worker.ts';
import { TICKS_PER_SECOND } from './pacer.ts';

export type { Io } from '../common/io.ts';
import type { Io } from '../common/io.ts';

const WORKER_INDEX_ENV = 'HONGBAO_STUB_WORKER_INDEX';
const WORKER_ACCEPTS_ENV = 'HONGBAO_STUB_WORKER_ACCEPTS';
const MAX_PAYLOAD = 64 * 1024;

/** A native socket handle as node:child_process passes it (closed by whoever holds it last). */
interface NativeHandle {
  close(): void;
}

/** Runs the stub until SIGINT/SIGTERM; resolves to the exit code. */
export async function runStub(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { options, help } = parseOptions<StubOptions>(stubCommand, argv, env);
  if (help) {
    io.stdout(helpText(stubCommand));
    return 0;
  }
  if (options.workers > options.sets) {
    throw new ConfigError(`hongbao stub: --workers ${options.workers} is more than --sets ${options.sets}: every worker owns at least one SET`);
  }
  if (cluster.isWorker) return runWorker(options, Number(env[WORKER_INDEX_ENV] ?? 0), env[WORKER_ACCEPTS_ENV] === '1');
  assertListenable('stub', 'host', options.host);
  assertSafeListen('stub', 'host', options.host, options.token);
  if (options.iface !== 'auto') assertIface('stub', 'iface', options.iface);
  return runPrimary(options, io);
}

/** Calls `fn` just after every boundary of `periodMs` on the wall clock; returns a stop function. */
export function everyAligned(periodMs: number, offsetMs: number, fn: () => void): () => void {
  let timer: NodeJS.Timeout;
  const arm = () => {
    const now = Date.now();
    timer = setTimeout(run, periodMs - (now % periodMs) + offsetMs);
  };
  const run = () => {
    fn();
    arm();
  };
  arm();
  return () => clearTimeout(timer);
}

async function runPrimary(opts: StubOptions, io: Io): Promise<number> {
  const iface = chooseIface(opts.iface, opts.host);
  const acceptors = Math.min(opts.workers, opts.acceptors);
  const core = new StubCore({ workers: opts.workers, sets: opts.sets, history: opts.history, iface });
  let wsPort = 0;
  let tcpPort: number | undefined;

  // Each worker accepts on the shared socket itself; the primary only holds it (SCHED_NONE).
  cluster.schedulingPolicy = cluster.SCHED_NONE;

  /** Passes a released connection to the worker owning its user's SET; drops it when that one is down. */
  const relay = (from: number, msg: { u: number; r?: string; k?: 1 }, handle: NativeHandle | undefined) => {
    if (!handle) return;
    const to = core.ownerOf(msg.u);
    // Closed here once written to the owner's channel (the owner holds its own descriptor then).
    const sent = core.isUp(to) && workers.send(to, { t: 'adopt', u: msg.u, r: msg.r, ...(msg.k ? { k: msg.k } : {}) }, handle, () => handle.close());
    if (!sent) {
      handle.close();
      core.handOverDropped(from, to);
    }
  };

  const upWaiters = new Map<number, () => void>();
  const workers: WorkerSupervisor<ToPrimary, ToWorker> = new WorkerSupervisor(opts.workers, {
    env: (index) => ({ [WORKER_INDEX_ENV]: String(index), [WORKER_ACCEPTS_ENV]: index < acceptors ? '1' : '0' }),
    message: (index, msg, handle) => {
      if (msg.t === 'ho') return relay(index, msg, handle as NativeHandle | undefined);
      if (msg.t === 'up') {
        if (msg.port) wsPort = msg.port;
        if (msg.tcpPort) tcpPort = msg.tcpPort;
        core.workerUp(index, { pid: workers.pid(index), send: (m: ToWorker) => workers.send(index, m) });
        upWaiters.get(index)?.();
        return;
      }
      core.fromWorker(index, msg);
    },
    died: (index, w, how) => {
      core.workerDown(index);
      io.stderr(`hongbao stub: worker ${index} (pid ${w.process.pid}) died (${how}); its connections are lost, restarting it`);
    },
  });

  const up = workers.start().map(
    (w, i) =>
      new Promise<void>((resolve, reject) => {
        upWaiters.set(i, resolve);
        w.once('exit', (code) => reject(new Error(`worker ${i} exited with ${code} before it was up${i < acceptors ? ` (listening on ${opts.host}:${opts.port})` : ''}`)));
      }),
  );
  try {
    await Promise.all(up);
  } catch (err) {
    workers.abort();
    io.stderr(`hongbao stub: ${(err as Error).message}`);
    return 1;
  }
  upWaiters.clear();

  const app = build(core, { token: opts.token });
  await listenOrExplain('stub', 'http-port', 'TCP', opts.host, opts.httpPort, () => app.listen({ port: opts.httpPort, host: opts.host }));
  const httpPort = (app.server.address() as { port: number }).port;
  const stopTick = everyAligned(1000 / TICKS_PER_SECOND, 1, () => core.tick());
  const stopNic = everyAligned(1000, 2, () => core.sampleNic());
  io.stdout(JSON.stringify({ event: 'listening', port: wsPort, ...(tcpPort ? { tcpPort } : {}), httpPort, host: opts.host, pid: process.pid, workers: workers.pids(), acceptors, iface }));
  io.stderr(
    `hongbao stub: ws://${opts.host}:${wsPort}${tcpPort ? ` and tcp://${opts.host}:${tcpPort}` : ''} with ${opts.workers} worker(s) (${acceptors} accepting), http://${opts.host}:${httpPort}, ` +
      `${opts.sets} SETs, max ${opts.maxQps} served/s`,
  );

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      io.stderr(`hongbao stub: ${signal}, stopping`);
      stopTick();
      stopNic();
      await app.close();
      await workers.stop(undefined, 3000);
      resolve(0);
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
  });
}

// ---- worker process ---------------------------------------------------------------------------

/**
 * Sockets this worker holds (accepted or adopted). Past its open-file limit a worker closes what
 * comes beyond it and says so once: a worker at its limit could not even receive a descriptor.
 */
let openSockets = 0;
let socketCap = 0;
let full = false;

function onSocketClose(): void {
  openSockets--;
}

function admit(socket: Socket | undefined, worker: StubWorker): boolean {
  if (openSockets < socketCap) {
    openSockets++;
    socket?.once('close', onSocketClose);
    return true;
  }
  worker.bump(F.errors);
  if (!full) {
    full = true;
    process.stderr.write(
      `hongbao stub: worker ${worker.config.index} holds ${socketCap} connections, all its open-file limit allows; refusing more: start the stub with more --workers\n`,
    );
  }
  return false;
}

async function runWorker(opts: StubOptions, index: number, accepts: boolean): Promise<number> {
  const send = (msg: ToPrimary) => sendToParent(msg);
  const handOff: HandOff = (user, handle, rest, raw) => {
    const h = handle as NativeHandle;
    if (!process.connected) return h.close();
    const msg: ToPrimary = { t: 'ho', u: user, r: rest ? rest.toString('base64') : undefined, ...(raw ? { k: 1 as const } : {}) };
    process.send!(msg, h as never, undefined, () => h.close());
  };
  const worker = new StubWorker({ index, workers: opts.workers, sets: opts.sets, maxQps: opts.maxQps }, send, opts.workers > 1 ? handOff : undefined);
  socketCap = openFileLimit().soft - RESERVED_FDS;
  const handler = liteHandler(worker);
  const server = createLiteServer({ handler, maxPayload: MAX_PAYLOAD });
  // The original's raw-TCP framing: same handler, so the same SETs, counters and hand-over.
  const tcpServer = createLiteServer({ handler, maxPayload: MAX_MESSAGE_BYTES, raw: true });
  for (const s of [server, tcpServer]) {
    s.on('connection', (socket: Socket) => {
      if (!admit(socket, worker)) socket.destroy();
    });
  }
  process.on('message', (msg: ToWorker, handle?: NativeHandle) => {
    if (msg.t !== 'adopt') return worker.receive(msg);
    if (!handle) return;
    if (!admit(undefined, worker)) return handle.close();
    const conn = adoptLite(msg.k ? tcpServer : server, handle);
    conn.socket.once('close', onSocketClose);
    worker.adopt(conn, msg.u, msg.r ? Buffer.from(msg.r, 'base64') : null);
  });
  const stopFlush = everyAligned(1000, 20, () => send(worker.flush()));
  return new Promise<number>((resolve) => {
    const stop = () => {
      stopFlush();
      for (const s of [server, tcpServer]) if (s.listening) s.close();
      resolve(0);
    };
    if (accepts) {
      const listen = (s: Server, port: number) =>
        new Promise<number>((ok, fail) => {
          s.once('listening', () => ok((s.address() as { port: number }).port));
          s.once('error', (err: Error) => fail(new Error(`cannot listen on ${opts.host}:${port}: ${err.message}`)));
          s.listen({ port, host: opts.host, backlog: 8192 });
        });
      Promise.all([listen(server, opts.port), opts.tcpPort === undefined ? Promise.resolve(undefined) : listen(tcpServer, opts.tcpPort)]).then(
        ([port, tcpPort]) => send({ t: 'up', port, tcpPort }),
        (err: Error) => {
          process.stderr.write(`hongbao stub: ${err.message}\n`);
          stopFlush();
          resolve(2);
        },
      );
    } else {
      send({ t: 'up', port: 0 });
    }
    process.once('SIGTERM', stop);
    process.once('SIGINT', () => undefined); // the primary decides
    process.once('disconnect', stop); // primary gone: nobody to serve
  });
}
