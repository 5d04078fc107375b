// Reconnection after a server restart: the agent reopens every connection with jittered backoff at
// its bounded ramp, counts what it could not send as missed, and never sends a burst of catch-up
// shakes: the new stub never sees more than the target in any second, and exactly it once all are back.
import test from 'ava';
import { getJson, sleep, startAgent, startStub, stubShakes, stubStats, waitFor } from './agent-helpers.ts';

interface Sec {
  second: number;
  sent: number;
  missed: number;
  answered: number;
}

for (const transport of ['ws', 'tcp'] as const) {
test.serial(`reconnects after a stub restart with backoff, no catch-up burst, outage counted as missed (${transport})`, async (t) => {
  t.timeout(45_000);
  // The restarted stub listens where the first one did (its WebSocket port, or over tcp:// its raw-TCP port).
  const first = await startStub(t, 1, 0, transport === 'tcp' ? ['--tcp-port', '0'] : []);
  const port = transport === 'ws' ? first.port : first.tcpPort!;
  const stubArgs = (): [number, string[]] => (transport === 'ws' ? [port, []] : [0, ['--tcp-port', String(port)]]);
  const Q = 250;
  const a = await startAgent(t, ['--server', `${transport}://127.0.0.1:${port}`, '--total-users', '500', '--users', '0:500', '--workers', '2', '--source-ip', '127.0.0.2-3', '--qps', String(Q), '--spread-ms', '500']);
  await a.proc.event('connected', 20000);
  await waitFor('a complete loaded second', async () => (await getJson<{ seconds: Sec[] }>(`${a.url}/stats`)).seconds.some((s) => s.sent === Q));
  const killedAt = Math.floor(Date.now() / 1000);
  await first.proc.kill('SIGKILL');
  await sleep(2000); // the outage: two seconds without a server
  const second = await startStub(t, 1, ...stubArgs());
  const restartedAt = Math.floor(Date.now() / 1000);
  await waitFor('all 500 users back on the new stub', async () => (await stubStats(second.httpPort)).connections === 500, 20_000);
  const backAt = Math.floor(Date.now() / 1000) + 1;
  const seen = await stubShakes(second.httpPort, restartedAt, backAt + 2, 10_000);
  for (const [s, n] of seen) t.true(n <= Q, `second ${s}: ${n} shakes > ${Q}`);
  t.is(seen.get(backAt + 1), Q);
  t.is(seen.get(backAt + 2), Q);
  // The agent's account: every due shake is either sent or missed; the outage is missed.
  const st = await getJson<{ connections: number; seconds: Sec[] }>(`${a.url}/stats?since=${killedAt - 1}`);
  t.is(st.connections, 500);
  const outage = st.seconds.filter((s) => s.second > killedAt && s.second < restartedAt);
  t.true(outage.length >= 1);
  for (const s of outage) t.is(s.sent + s.missed, Q, `second ${s.second}`);
  t.true(outage.some((s) => s.missed > 0));
  const health = await getJson<{ ok: boolean; workers: Array<{ failures: number }> }>(`${a.url}/health`);
  t.true(health.ok);
  t.true(health.workers.reduce((n, w) => n + w.failures, 0) > 0, 'failed attempts were counted');
  t.true(a.proc.stderr.some((l) => /errors by source IP: 127\.0\.0\.[23]=\d+/.test(l)), a.proc.stderr.join('\n'));
});
}

test.serial('a worker that dies is restarted, its users log in again, and its due shakes meanwhile are missed, not vanished', async (t) => {
  t.timeout(30_000);
  const Q = 120;
  const stub = await startStub(t, 1);
  const a = await startAgent(t, ['--server', `ws://127.0.0.1:${stub.port}`, '--total-users', '600', '--users', '0:600', '--workers', '2', '--source-ip', '127.0.0.6', '--qps', String(Q)]);
  const listening = await a.proc.event('listening');
  await a.proc.event('connected', 20000);
  await waitFor('a complete loaded second', async () => (await getJson<{ seconds: Sec[] }>(`${a.url}/stats`)).seconds.some((s) => s.sent === Q));
  const victim = (listening.workers as number[])[0];
  const killedAt = Math.floor(Date.now() / 1000);
  process.kill(victim, 'SIGKILL');
  await waitFor('worker restarted', async () => a.proc.stderr.some((l) => l.includes(`worker 0 (pid ${victim}) died (SIGKILL); restarting it`)));
  const h = await waitFor('all 600 users back', async () => {
    const body = await getJson<{ ok: boolean; connections: number; workers: Array<{ pid: number; restarts: number }> }>(`${a.url}/health`);
    return body.ok && body.connections === 600 ? body : undefined;
  }, 20_000);
  t.is(h.workers[0].restarts, 1);
  t.not(h.workers[0].pid, victim);
  t.is((await stubStats(stub.httpPort)).connections, 600);
  // Every second around the death adds up to the agent's share (the whole fleet here): sent + missed = Q.
  const backAt = Math.floor(Date.now() / 1000);
  const st = await waitFor('the seconds after everyone is back', async () => {
    const body = await getJson<{ seconds: Sec[] }>(`${a.url}/stats?since=${killedAt - 1}`);
    return body.seconds.some((s) => s.second >= backAt + 1) ? body : undefined;
  }, 10_000);
  const span = st.seconds.filter((s) => s.second >= killedAt - 1 && s.second <= backAt + 1);
  t.true(span.length >= 3, JSON.stringify(span));
  for (const s of span) t.is(s.sent + s.missed, Q, `second ${s.second}: ${JSON.stringify(s)}`);
  t.true(span.some((s) => s.missed >= Q / 4), `the dead worker's half of the users missed: ${JSON.stringify(span)}`);
  const last = span[span.length - 1];
  t.is(last.sent, Q, 'once back, everything is sent again');
});
