// Helpers of the agent integration tests: real processes of dist/hongbao.cjs (build first), real
// sockets on 127.0.0.0/8, every process killed by its PID in teardown, every wait bounded.
import { spawn, type ChildProcess } from 'node:child_process';
import { CliProcess } from '../common/child.ts';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { sleep, waitFor } from '../common/wait.ts';
import { which } from './helpers/tools.ts';

export const CLI = new URL('../dist/hongbao.cjs', import.meta.url).pathname;

export interface Proc {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  /** Resolves with the first stdout JSON line whose `event` matches. */
  event: (name: string, timeoutMs?: number) => Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
  kill: (signal?: NodeJS.Signals) => Promise<void>;
}

/** `hongbao ARGS` with only PATH and `env` in its environment, stopped by PID in teardown. */
export function run(t: ExecutionContext, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const p = new CliProcess(args[0] ?? 'hongbao', [process.execPath, CLI], args, { PATH: process.env.PATH, ...env });
  const lines = (text: string) => text.split('\n').filter((l) => l !== '');
  const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
    await p.stop(4000, signal);
  };
  t.teardown(() => kill());
  return {
    child: p.child,
    get stdout() {
      return lines(p.stdout());
    },
    get stderr() {
      return lines(p.stderr());
    },
    event: (name, timeoutMs = 15000) => p.waitEvent(name, timeoutMs),
    exited: p.exited.then((r) => r.code),
    kill,
  };
}

export { sleep, waitFor };

/**
 * A port on 127.0.0.1 that nothing listens on (just released): for "the server is down". A test that
 * restarts a server on the same port starts it on port 0 first and reuses the port it got.
 */
export async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A UDP port just released (chronyd must be told its port: it cannot report one it picked). */
export async function freeUdpPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

export interface Stub {
  proc: Proc;
  port: number;
  httpPort: number;
  /** The raw-TCP port (the stub was started with --tcp-port). */
  tcpPort?: number;
}

export async function startStub(t: ExecutionContext, workers: number, port = 0, extra: string[] = []): Promise<Stub> {
  const proc = run(t, ['stub', '--port', String(port), '--http-port', '0', '--workers', String(workers), ...extra]);
  const ev = await proc.event('listening');
  return { proc, port: ev.port as number, httpPort: ev.httpPort as number, tcpPort: ev.tcpPort as number | undefined };
}

export interface StubSecond {
  second: number;
  shakes: number;
  logins: number;
}

export async function stubStats(httpPort: number, since?: number): Promise<{ now: number; connections: number; seconds: StubSecond[] }> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/stats${since === undefined ? '' : `?since=${since}`}`);
  return (await res.json()) as { now: number; connections: number; seconds: StubSecond[] };
}

/** The stub's shakes per second for seconds [from, to], once the stub has completed `to`. */
export async function stubShakes(httpPort: number, from: number, to: number, timeoutMs = 10000): Promise<Map<number, number>> {
  return waitFor(`stub seconds ${from}..${to}`, async () => {
    const st = await stubStats(httpPort, from);
    const last = st.seconds[st.seconds.length - 1];
    if (!last || last.second < to) return undefined;
    return new Map(st.seconds.filter((s) => s.second <= to).map((s) => [s.second, s.shakes]));
  }, timeoutMs);
}

export interface Agent {
  proc: Proc;
  controlPort: number;
  url: string;
}

export async function startAgent(t: ExecutionContext, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Agent> {
  const proc = run(t, ['agent', '--control-port', '0', ...args], env);
  const ev = await proc.event('listening', 20000);
  return { proc, controlPort: ev.controlPort as number, url: `http://127.0.0.1:${ev.controlPort}` };
}

export async function getJson<T = Record<string, unknown>>(url: string): Promise<T> {
  const res = await fetch(url);
  return (await res.json()) as T;
}

export async function postJson(url: string, body: unknown, token?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/**
 * Debian's chronyd as a real NTP server on a loopback UDP port (-x: never touches the system clock).
 * The caller skips where chronyd is not installed (helpers/tools.ts needing()).
 */
export async function startChrony(t: ExecutionContext): Promise<{ port: number }> {
  const bin = which('chronyd');
  if (!bin) throw new Error('chronyd is not installed (apt-get install chrony, or sudo npm run setup:test)');
  const port = await freeUdpPort();
  const dir = mkdtempSync(join(tmpdir(), 'hb-chrony-'));
  const conf = join(dir, 'chrony.conf');
  writeFileSync(
    conf,
    [`port ${port}`, 'bindaddress 127.0.0.1', 'allow 127.0.0.0/8', 'local stratum 8', 'cmdport 0', `pidfile ${join(dir, 'chronyd.pid')}`, `driftfile ${join(dir, 'drift')}`, ''].join('\n'),
  );
  const child = spawn(bin, ['-x', '-d', '-f', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(3000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  });
  // Ready when it answers a query.
  const ntp = (await import('ntp-client')).default;
  await waitFor(`chronyd on 127.0.0.1:${port} (${err})`, () =>
    new Promise<boolean>((resolve) => {
      ntp.ntpReplyTimeout = 300;
      ntp.getNetworkTime('127.0.0.1', port, (e) => resolve(!e));
    }), 8000, 100);
  return { port };
}
