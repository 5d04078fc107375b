// The agent as a process, without load: pre-flight refusals (exit 2, one line naming the fix), the
// loopback-without-token rule, the control endpoint's 400/401 over a real socket, a server that is
// down (retries counted, no crash) and the controller push (register + one sample per second; a
// missing controller is reported, not fatal).
import { createServer } from 'node:http';
import test from 'ava';
import { closedPort, getJson, postJson, run, startAgent, waitFor } from './agent-helpers.ts';

test('pre-flight: more users per source IP than ephemeral ports exits 2 naming the fix (more than even the widest range has)', async (t) => {
  const p = run(t, ['agent', '--server', 'ws://127.0.0.1:1', '--users', '0:70000', '--total-users', '70000', '--source-ip', '127.0.0.2', '--control-port', '0']);
  t.is(await p.exited, 2);
  const text = p.stderr.join('\n');
  t.regex(text, /70000 users need 70000 ephemeral ports per --source-ip address \(1 given\)/);
  t.regex(text, /give at least \d+ --source-ip addresses|ip_local_port_range/);
  t.is(p.stderr.filter(Boolean).length, 1);
});

test('pre-flight: too many sockets per worker for the fd limit exits 2 naming --workers', async (t) => {
  const p = run(t, ['agent', '--server', 'ws://127.0.0.1:1', '--users', '0:40000', '--total-users', '40000', '--source-ip', '127.0.0.2-3', '--workers', '1', '--control-port', '0']);
  t.is(await p.exited, 2);
  t.regex(p.stderr.join('\n'), /--workers 1 puts 40000 sockets in one process, above its open-file limit .* use --workers \d+ or more/);
});

test('refuses a non-loopback control endpoint without a token; bad flags exit 2', async (t) => {
  const p = run(t, ['agent', '--server', 'ws://127.0.0.1:1', '--users', '0:10', '--total-users', '10', '--control-host', '0.0.0.0']);
  t.is(await p.exited, 2);
  t.regex(p.stderr.join('\n'), /--control-host 0\.0\.0\.0 is not a loopback address and no token is set/);
  const q = run(t, ['agent', '--server', 'ws://127.0.0.1:1', '--users', '0:10', '--total-users', '10', '--qps', '11']);
  t.is(await q.exited, 2);
  t.regex(q.stderr.join('\n'), /--qps must be an integer from 0 to 10/);
  const ip = run(t, ['agent', '--server', 'ws://127.0.0.1:1', '--users', '0:10', '--total-users', '10', '--source-ip', '192.0.2.77']);
  t.is(await ip.exited, 2);
  t.regex(ip.stderr.join('\n'), /--source-ip 192\.0\.2\.77 is not an address of this host/);
  const h = run(t, ['agent', '--help']);
  t.is(await h.exited, 0);
  t.regex(h.stdout.join('\n'), /--source-ip IP\|A-B/);
});

test('control endpoint over HTTP: 400 with a message, 401 on a wrong token; a down server is retried, not fatal', async (t) => {
  t.timeout(20_000);
  const dead = await closedPort();
  const a = await startAgent(t, ['--server', `ws://127.0.0.1:${dead}`, '--users', '0:20', '--total-users', '100', '--workers', '1', '--source-ip', '127.0.0.2'], { HONGBAO_TOKEN: 'right' });
  const wrong = await postJson(`${a.url}/qps`, { qps: 10 }, 'wrong');
  t.is(wrong.status, 401);
  t.is(wrong.json.code, 'HB_UNAUTHORIZED');
  const big = await postJson(`${a.url}/qps`, { qps: 101 }, 'right');
  t.is(big.status, 400);
  t.regex(String(big.json.message), /body\/qps must be <= 100/);
  const past = await postJson(`${a.url}/qps`, { qps: 1, at: 1000 }, 'right');
  t.is(past.status, 400);
  t.regex(String(past.json.message), /in the past/);
  const ok = await postJson(`${a.url}/qps`, { qps: 10 }, 'right');
  t.is(ok.status, 200);
  const h = await waitFor('failed attempts reported', async () => {
    const body = await getJson<{ workers: Array<{ failures: number }>; connections: number }>(`${a.url}/health`);
    return body.workers[0].failures > 0 ? body : undefined;
  });
  t.is(h.connections, 0);
  await waitFor('progress line with per-IP errors', async () => a.proc.stderr.some((l) => /connected 0\/20 .* errors by source IP: 127\.0\.0\.2=\d+; last: .*ECONNREFUSED/.test(l)));
  const metrics = await (await fetch(`${a.url}/metrics`)).text();
  t.regex(metrics, /hongbao_agent_connections 0/);
  t.is(a.proc.child.exitCode, null);
});

test('controller push: registers and pushes one sample per second; a missing controller is reported, not fatal', async (t) => {
  t.timeout(20_000);
  const got: Array<{ url: string; body: Record<string, unknown>; auth?: string }> = [];
  const srv = createServer((req, res) => {
    let data = '';
    req.on('data', (d) => (data += d));
    req.on('end', () => {
      got.push({ url: req.url!, body: JSON.parse(data || '{}'), auth: req.headers.authorization });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  const ctl = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
  const dead = await closedPort();
  const a = await startAgent(t, ['--server', `ws://127.0.0.1:${dead}`, '--users', '0:5', '--total-users', '5', '--workers', '1', '--controller', ctl, '--id', 'agent-7'], { HONGBAO_TOKEN: 'tok' });
  await waitFor('3 samples', async () => got.filter((g) => g.url === '/agents/agent-7/samples').length >= 3, 10_000);
  t.is(got[0].url, '/agents');
  t.is(got[0].body.id, 'agent-7');
  t.regex(String(got[0].body.controlUrl), /^http:\/\/127\.0\.0\.1:\d+$/);
  t.is(got[0].auth, 'Bearer tok');
  const samples = got.filter((g) => g.url === '/agents/agent-7/samples').map((g) => g.body);
  t.true(samples.every((s) => typeof s.second === 'number' && 'sent' in s && 'p99Ms' in s && 'offsetMs' in s));
  const secs = samples.map((s) => s.second as number);
  t.deepEqual(secs, [...new Set(secs)].sort((x, y) => x - y), 'one sample per second, in order');
  // No controller at all: reported on stderr, the agent keeps running.
  const b = await startAgent(t, ['--server', `ws://127.0.0.1:${dead}`, '--users', '0:5', '--total-users', '5', '--workers', '1', '--controller', `http://127.0.0.1:${dead}`]);
  await waitFor('controller failure line', async () => b.proc.stderr.some((l) => /controller http:\/\/127\.0\.0\.1:\d+\/? registration \(POST \/agents\) failed/.test(l)), 10_000);
  t.is(b.proc.child.exitCode, null);
  t.is((await getJson<{ ok: boolean }>(`${b.url}/health`)).ok, true);
});
