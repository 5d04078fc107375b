// An in-process controller with an injected clock, and fake agents (real HTTP servers on port 0).
import type { ExecutionContext } from 'ava';
import { createServer, type IncomingMessage } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../controller/app.ts';
import { Controller, type ControllerConfig } from '../../controller/controller.ts';

export function setup(t: ExecutionContext, over: Partial<ControllerConfig> = {}) {
  let now = 1_800_000_000_000;
  const logs: string[] = [];
  const ctl = new Controller({
    resultsDir: mkdtempSync(join(tmpdir(), 'hb-ctl-')),
    leadSeconds: 2,
    lostAfterSeconds: 5,
    chartEverySeconds: 3600,
    clock: () => now,
    log: (l) => logs.push(l),
    ...over,
  });
  ctl.startRun();
  const app = build(ctl);
  t.teardown(() => app.close());
  return {
    ctl,
    app,
    logs,
    advance: (ms: number) => (now += ms),
    now: () => now,
    post: (url: string, payload: unknown, headers: Record<string, string> = {}) =>
      app.inject({ method: 'POST', url, payload: payload as string, headers: { 'content-type': 'application/json', ...headers } }),
  };
}

export interface FakeAgent {
  url: string;
  got: Array<{ body: unknown; auth: string | undefined }>;
}

/** A real HTTP server answering POST /qps like an agent would (or with `status`). */
export async function fakeAgent(t: ExecutionContext, status = 200): Promise<FakeAgent> {
  const got: FakeAgent['got'] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      got.push({ body: JSON.parse(body), auth: req.headers.authorization });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(status === 200 ? { ok: true } : { message: 'at is in the past' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, got };
}


export { closedPort } from '../agent-helpers.ts';
