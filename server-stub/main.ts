// `hongbao stub`: the primary forks --workers processes (node:cluster) that share the WebSocket
// port and hold the connections; the primary runs the HTTP API, the generator, the sending service
// and merges the workers' counters. A worker that dies is reported and replaced.
import cluster, { type Worker } from 'node:cluster';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import { createLiteServer } from '../common/wslite.ts';
import { RESERVED_FDS, openFileLimit } from '../common/limits.ts';
import { F } from './fields.ts';
import { helpText, parseOptions } from '../common/options.ts';
import { share } from '../common/split.ts';
import { StubCore } from './core.ts';
import { build } from './http.ts';
import type { ToPrimary, ToWorker } from './ipc.ts';
import { chooseIface } from './nic.ts';
import { stubCommand, type StubOptions } from './options.ts';
import { StubWorker, liteHandler } from './worker.ts';
import { TICKS_PER_SECOND } from './pacer.ts';

export type { Io } from '../common/io.ts';
import type { Io } from '../common/io.ts';

const WORKER_INDEX_ENV = 'HONGBAO_STUB_WORKER_INDEX';

/** Runs the stub until SIGINT/SIGTERM; resolves to the exit code. */
export async function runStub(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { options, help } = parseOptions<StubOptions>(stubCommand, argv, env);
  if (help) {
    io.stdout(helpText(stubCommand));
    return 0;
  }
  if (cluster.isWorker) return runWorker(options, Number(env[WORKER_INDEX_ENV] ?? 0));
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
  const core = new StubCore({ workers: opts.workers, sets: opts.sets, history: opts.history, iface });
  const byWorker = new Map<Worker, number>();
  let stopping = false;
  let wsPort = 0;

  const fork = (index: number): Worker => {
    const w = cluster.fork({ [WORKER_INDEX_ENV]: String(index) });
    byWorker.set(w, index);
    w.on('message', (msg: ToPrimary) => core.fromWorker(index, msg));
    w.on('listening', (addr) => {
      wsPort = addr.port;
      core.workerUp(index, { pid: w.process.pid ?? 0, send: (m: ToWorker) => w.isConnected() && w.send(m) });
    });
    w.on('exit', (code, signal) => {
      byWorker.delete(w);
      core.workerDown(index);
      if (stopping) return;
      io.stderr(`hongbao stub: worker ${index} (pid ${w.process.pid}) died (${signal ?? `exit ${code}`}); its connections are lost, restarting it`);
      setTimeout(() => !stopping && fork(index), 500);
    });
    return w;
  };

  const listening = Array.from({ length: opts.workers }, (_, i) => {
    const w = fork(i);
    return new Promise<void>((resolve, reject) => {
      w.once('listening', () => resolve());
      w.once('exit', (code) => reject(new Error(`worker ${i} exited with ${code} before listening on ${opts.host}:${opts.port}`)));
    });
  });
  try {
    await Promise.all(listening);
  } catch (err) {
    stopping = true;
    for (const w of byWorker.keys()) w.process.kill();
    io.stderr(`hongbao stub: ${(err as Error).message}`);
    return 1;
  }

  const app = build(core, { token: opts.token });
  await app.listen({ port: opts.httpPort, host: opts.host });
  const httpPort = (app.server.address() as { port: number }).port;
  const stopTick = everyAligned(1000 / TICKS_PER_SECOND, 1, () => core.tick());
  const stopNic = everyAligned(1000, 2, () => core.sampleNic());
  io.stdout(JSON.stringify({ event: 'listening', port: wsPort, httpPort, host: opts.host, pid: process.pid, workers: [...byWorker.keys()].map((w) => w.process.pid), iface }));
  io.stderr(`hongbao stub: ws://${opts.host}:${wsPort} with ${opts.workers} worker(s), http://${opts.host}:${httpPort}, ${opts.sets} SETs, max ${opts.maxQps} served/s, --ws-impl ${opts.wsImpl}`);

  return new Promise<number>((resolve) => {
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      io.stderr(`hongbao stub: ${signal}, stopping`);
      stopTick();
      stopNic();
      const exits = [...byWorker.keys()].map((w) => new Promise((r) => (w.isDead() ? r(null) : w.once('exit', r))));
      for (const w of byWorker.keys()) w.process.kill('SIGTERM');
      await app.close();
      await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 3000))]);
      resolve(0);
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
  });
}

let openSockets = 0;
function onSocketClose(): void {
  openSockets--;
}

async function runWorker(opts: StubOptions, index: number): Promise<number> {
  const worker = new StubWorker(
    { index, workers: opts.workers, sets: opts.sets, cap: share(opts.maxQps, opts.workers, index) },
    (msg) => process.connected && process.send!(msg),
  );
  // Past its open-file limit a worker could not even receive a connection from the primary, which
  // would then hold it unanswered (node:cluster re-offers a connection a worker declines through
  // maxConnections, forever when all are full): close what comes beyond the limit, and say so.
  // The same gate serves both transports (--ws-impl): `ws` on an http.Server, lite on a net.Server.
  const cap = openFileLimit().soft - RESERVED_FDS;
  const lite = opts.wsImpl === 'lite';
  const server = lite
    ? createLiteServer({ handler: liteHandler(worker), maxPayload: 64 * 1024 })
    : createServer((_req, res) => res.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket only\n'));
  let full = false;
  server.on('connection', (socket: Socket) => {
    if (openSockets < cap) {
      openSockets++;
      socket.once('close', onSocketClose);
      return;
    }
    socket.destroy();
    worker.bump(F.errors);
    if (!full) {
      full = true;
      process.stderr.write(`hongbao stub: worker ${index} holds ${cap} connections, all its open-file limit allows; refusing more: start the stub with more --workers\n`);
    }
  });
  let wss: WebSocketServer | undefined;
  if (!lite) {
    wss = new WebSocketServer({ server: server as Server, maxPayload: 64 * 1024, perMessageDeflate: false, clientTracking: false });
    wss.on('connection', (ws) => worker.attach(ws));
  }
  server.listen({ port: opts.port, host: opts.host, backlog: 8192 });
  process.on('message', (msg: ToWorker) => worker.receive(msg));
  const stopFlush = everyAligned(1000, 20, () => process.connected && process.send!(worker.flush()));
  return new Promise<number>((resolve) => {
    const stop = () => {
      stopFlush();
      if (wss) wss.close();
      else server.close();
      resolve(0);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', () => undefined); // the primary decides
    process.once('disconnect', stop); // primary gone: nobody to serve
  });
}
