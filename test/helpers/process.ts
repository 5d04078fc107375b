// Starts `node dist/hongbao.cjs <command>` for a test, waits for its JSON "listening" line on
// stdout, and ends it by PID in t.teardown.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

export const CLI = fileURLToPath(new URL('../../dist/hongbao.cjs', import.meta.url));

export interface Started<T> {
  child: ChildProcess;
  ready: T;
  stderr: () => string;
  stdout: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startCli<T = Record<string, unknown>>(
  t: ExecutionContext,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Started<T>> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  });
  const ready = await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} not ready within ${opts.timeoutMs ?? 15000} ms; stderr: ${err}`)), opts.timeoutMs ?? 15000);
    const check = () => {
      const line = out.split('\n').find((l) => l.includes('"listening"'));
      if (line) {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        resolve(JSON.parse(line) as T);
      }
    };
    child.stdout!.on('data', check);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`${args[0]} exited with ${code} before listening; stderr: ${err}`));
    });
  });
  return { child, ready, stderr: () => err, stdout: () => out, exited };
}

/** Runs the CLI to completion and returns its exit code and output. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 15000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hongbao ${args.join(' ')} did not exit within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface StubReady {
  port: number;
  httpPort: number;
  pid: number;
  workers: number[];
}

/** A running stub plus helpers for its HTTP API. */
export async function startStub(t: ExecutionContext, args: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const s = await startCli<StubReady>(t, ['stub', '--port', '0', '--http-port', '0', ...args], { env });
  const base = `http://127.0.0.1:${s.ready.httpPort}`;
  return {
    ...s,
    url: `ws://127.0.0.1:${s.ready.port}`,
    base,
    async get<T = any>(path: string): Promise<{ status: number; body: T }> {
      const res = await fetch(base + path);
      const text = await res.text();
      return { status: res.status, body: (text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text) as T };
    },
    async post<T = any>(path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
      const res = await fetch(base + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as T };
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
