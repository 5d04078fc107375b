// Helpers of the agent integration tests: real processes of dist/hongbao.cjs (build first), real
// sockets on 127.0.0.0/8, every process killed by its PID in teardown, every wait bounded.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
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

export function run(t: ExecutionContext, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters: Array<{ name: string; resolve: (v: Record<string, unknown>) => void }> = [];
  let outBuf = '';
  child.stdout!.on('data', (d: Buffer) => {
    outBuf += d.toString();
    let nl: number;
    while ((nl = outBuf.indexOf('\n')) >= 0) {
      const line = outBuf.slice(0, nl);
      outBuf = outBuf.slice(nl + 1);
      stdout.push(line);
      try {
        const j = JSON.parse(line) as Record<string, unknown>;
        for (const w of waiters.filter((w) => w.name === j.event)) w.resolve(j);
      } catch {
        /* not an event */
      }
    }
  });
  let errBuf = '';
  child.stderr!.on('data', (d: Buffer) => {
    errBuf += d.toString();
    const lines = errBuf.split('\n');
    errBuf = lines.pop()!;
    stderr.push(...lines);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const event = (name: string, timeoutMs = 15000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      for (const line of stdout) {
        try {
          const j = JSON.parse(line) as Record<string, unknown>;
          if (j.event === name) return resolve(j);
        } catch {
          /* skip */
        }
      }
      const timer = setTimeout(() => reject(new Error(`no "${name}" event within ${timeoutMs} ms; stderr:\n${stderr.slice(-15).join('\n')}`)), timeoutMs);
      waiters.push({
        name,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`process exited (${code}) before "${name}"; stderr:\n${stderr.slice(-15).join('\n')}`));
      });
    });
  const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const done = await Promise.race([exited.then(() => true), sleep(4000).then(() => false)]);
    if (!done && child.pid) child.kill('SIGKILL');
  };
  t.teardown(() => kill());
  return { child, stdout, stderr, event, exited, kill };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value or the time is up. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 15000, everyMs = 200): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

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
