// Starts `node dist/hongbao.cjs <command>` for a test, waits for its JSON "listening" line on
// stdout, and ends it by PID in t.teardown (common/child.ts does the work).
import { spawn, type ChildProcess } from 'node:child_process';
import { CliProcess } from '../../common/child.ts';
import { sleep, waitFor } from '../../common/wait.ts';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

export const CLI = fileURLToPath(new URL('../../dist/hongbao.cjs', import.meta.url));

export interface Started<T> {
  child: ChildProcess;
  ready: T;
  proc: CliProcess;
  stderr: () => string;
  stdout: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `hongbao <args>`, waits for its "listening" event, and stops it (by PID) in t.teardown. */
export async function startCli<T = Record<string, unknown>>(
  t: ExecutionContext,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Started<T>> {
  const proc = new CliProcess(args[0], [process.execPath, CLI], args, { ...process.env, ...opts.env });
  t.teardown(() => proc.stop());
  const ready = (await proc.ready(opts.timeoutMs ?? 15000)) as unknown as T;
  return { child: proc.child, ready, proc, stderr: () => proc.stderr(), stdout: () => proc.stdout(), exited: proc.exited };
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (bounded by `timeoutMs`) and returns its exit code and output. */
export function runProcess(command: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<Ran> {
  const timeoutMs = opts.timeoutMs ?? 15000;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // Past the time: SIGTERM first, so a script's trap tears down what it started (a stub, namespaces),
    // then SIGKILL whatever is still there after 5 s.
    let kill: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      kill = setTimeout(() => child.kill('SIGKILL'), 5000);
      reject(new Error(`${command} ${args.join(' ')} did not exit within ${timeoutMs} ms`));
    }, timeoutMs);
    // 'close', not 'exit': the output streams are complete only then.
    child.once('close', (code) => {
      clearTimeout(timer);
      clearTimeout(kill);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs the CLI to completion and returns its exit code and output. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 15000): Promise<Ran> {
  return runProcess(process.execPath, [CLI, ...args], { env, timeoutMs });
}

export interface StubReady {
  port: number;
  /** With --tcp-port: the raw-TCP port. */
  tcpPort?: number;
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

export { sleep, waitFor };
