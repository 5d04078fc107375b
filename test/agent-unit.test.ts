// Unit tests of the agent's parts that need no sockets: options, pre-flight, the control endpoint
// (inject), the scheduler on an injected clock.
import test from 'ava';
import { ConfigError } from '../common/errors.ts';
import { parseOptions } from '../common/options.ts';
import { countFiring, offsetMs } from '../common/schedule.ts';
import { build } from '../agent/control.ts';
import { agentCommand, compactSourceIps, crossCheck, expandSourceIps, type AgentOptions } from '../agent/options.ts';
import { checkSourceIps, defaultWorkers, preflight, usersPerWorkerLimit, type HostFacts } from '../agent/preflight.ts';
import { isLocalAddress } from '../common/addresses.ts';
import { Scheduler } from '../agent/scheduler.ts';
import { AgentStats, R, SecondRecs } from '../agent/stats.ts';

const base = ['--server', 'ws://127.0.0.1:1025', '--users', '0:1000', '--total-users', '3000'];
const parse = (extra: string[], env: NodeJS.ProcessEnv = {}) => {
  const { options } = parseOptions<AgentOptions>(agentCommand, [...base, ...extra], env);
  crossCheck(options);
  return options;
};

test('options: defaults and one-line errors naming the flag', (t) => {
  const o = parse([]);
  t.is(o.rule, 'window');
  t.is(o.mode, 'spread');
  t.is(o.ntp, 'off');
  t.is(o.controlPort, 9090);
  const bad: Array<[string[], RegExp]> = [
    [['--qps', '3001'], /--qps must be an integer from 0 to 3000/],
    [['--qps', '-1'], /--qps must be an integer >= 0/],
    [['--mode', 'wave'], /--mode must be one of spread, burst, got "wave"/],
    [['--rule', 'x'], /--rule must be one of modulo, window/],
    [['--ntp', 'a:b:c'], /--ntp must be HOST\[:PORT\] or off/],
    [['--workers', '0'], /--workers must be an integer from 1 to 256/],
  ];
  for (const [argv, re] of bad) {
    const err = t.throws(() => parse(argv), { instanceOf: ConfigError });
    t.regex(err!.message, re);
    t.false(err!.message.includes('\n'));
  }
  t.throws(() => parseOptions(agentCommand, ['--server', 'http://x:1', '--users', '0:1', '--total-users', '1']), { message: /--server must be a URL \(ws:\/\/ or wss:\/\//});
  t.throws(() => parseOptions(agentCommand, ['--server', 'ws://x:1', '--users', '5', '--total-users', '1']), { message: /--users must be FIRST:COUNT/ });
  const outside = parseOptions<AgentOptions>(agentCommand, ['--server', 'ws://x:1', '--users', '2500:1000', '--total-users', '3000']).options;
  t.throws(() => crossCheck(outside), { message: /--users 2500:1000 must lie within the fleet's ids 0..2999/ });
  t.is(parse([], { HONGBAO_AGENT_QPS: '300', HONGBAO_AGENT_SOURCE_IP: '127.0.0.2,127.0.0.3' }).qps, 300);
});

test('source IPs: singles, ranges, short ranges; duplicates and nonsense refused', (t) => {
  t.deepEqual(expandSourceIps(['127.0.0.1', '127.0.0.5-127.0.0.7']), ['127.0.0.1', '127.0.0.5', '127.0.0.6', '127.0.0.7']);
  t.deepEqual(expandSourceIps(['10.0.0.254-10.0.1.1']), ['10.0.0.254', '10.0.0.255', '10.0.1.0', '10.0.1.1']);
  t.deepEqual(expandSourceIps(['127.0.0.2-4,::1']), ['127.0.0.2', '127.0.0.3', '127.0.0.4', '::1']);
  t.throws(() => expandSourceIps(['127.0.0.1', '127.0.0.1']), { message: /twice/ });
  t.throws(() => expandSourceIps(['127.0.0.9-127.0.0.1']), { message: /ends before it starts/ });
  t.throws(() => expandSourceIps(['foo']), { message: /--source-ip must be an IP address/ });
  t.throws(() => expandSourceIps(['10.0.0.0-10.1.0.0']), { message: /at most 4096/ });
  // What the agent tells the controller (for the run's report): runs of consecutive addresses as ranges.
  t.deepEqual(compactSourceIps(expandSourceIps(['127.0.0.2-5', '127.0.0.9', '::1', '10.0.0.255-10.0.1.1'])), ['127.0.0.2-127.0.0.5', '127.0.0.9', '::1', '10.0.0.255-10.0.1.1']);
});

const facts: HostFacts = { portLow: 32768, portHigh: 60999, nofileSoft: 20000, nofileHard: 20000, cores: 2, addresses: ['127.0.0.1/8', '10.0.0.5/24', '::1/128'], nonlocalBind: false };

test('pre-flight: source IPs must be addresses of this host (all of 127/8 is)', (t) => {
  t.true(isLocalAddress('127.0.0.1', facts));
  t.true(isLocalAddress('127.3.2.1', facts));
  t.true(isLocalAddress('10.0.0.5', facts));
  t.true(isLocalAddress('::1', facts));
  t.false(isLocalAddress('10.0.0.6', facts));
  t.true(isLocalAddress('10.0.0.6', { ...facts, nonlocalBind: true }));
  t.notThrows(() => checkSourceIps(['127.0.0.2', '10.0.0.5'], facts));
  t.throws(() => checkSourceIps(['127.0.0.2', '198.18.1.10', '198.18.1.11'], facts), {
    message: /--source-ip 198\.18\.1\.10 \(and 1 more\) is not an address of this host: add it \(ip addr add 198\.18\.1\.10\/24 dev IFACE/,
  });
});

test('pre-flight: ephemeral ports per source IP, fds per worker, with the fix named', (t) => {
  t.notThrows(() => preflight(60000, 3, 4, facts));
  const ports = t.throws(() => preflight(60000, 2, 4, facts), { instanceOf: ConfigError });
  t.regex(ports!.message, /60000 users need 30000 ephemeral ports per --source-ip address \(2 given\).*has 27208 once 1024 are left to the host's other connections: give at least 3 --source-ip addresses.*ip_local_port_range/);
  t.throws(() => preflight(30000, 0, 2, facts), { message: /from the default source address/ });
  const fds = t.throws(() => preflight(60000, 4, 2, facts), { instanceOf: ConfigError });
  t.regex(fds!.message, /--workers 2 puts 30000 sockets in one process, above its open-file limit of 20000.*use --workers 4 or more \(the hard limit 20000 cannot be raised\)/);
  t.throws(() => preflight(2000, 1, 1, { ...facts, nofileSoft: 1024, nofileHard: 4096 }), { message: /ulimit -n 4096/ });
});

test('default workers: enough for the fd limit, otherwise no more than the cores', (t) => {
  t.is(usersPerWorkerLimit(facts), 14850);
  t.is(defaultWorkers(60000, facts), 5);
  t.is(defaultWorkers(1000, facts), 1);
  t.is(defaultWorkers(15000, facts), 2);
  t.is(defaultWorkers(15000, { ...facts, cores: 1 }), 2);
  t.is(defaultWorkers(5000, { ...facts, nofileSoft: 1024 }), 9);
});

function control(token?: string) {
  const calls: Array<[number, number]> = [];
  const now = 1_795_000_000_500;
  const app = build({
    token,
    totalUsers: 3000,
    now: () => now,
    setQps: (q, at) => calls.push([q, at]),
    qps: () => 0,
    stats: () => ({ id: 'a', connections: 0, qps: 0, offsetMs: 0, seconds: [] }),
    health: () => ({ ok: true }),
    metrics: () => 'x 1\n',
  });
  return { app, calls, second: Math.floor(now / 1000) };
}

test('control: POST /qps validates qps and at, 400 with a message', async (t) => {
  const { app, calls, second } = control();
  const post = (payload: unknown) => app.inject({ method: 'POST', url: '/qps', payload: payload as object });
  const ok = await post({ qps: 300, at: second + 2 });
  t.is(ok.statusCode, 200);
  t.deepEqual(ok.json(), { qps: 300, at: second + 2, previous: 0 });
  const next = await post({ qps: 0 });
  t.is(next.json().at, second + 1);
  t.deepEqual(calls, [[300, second + 2], [0, second + 1]]);
  const cases: Array<[unknown, RegExp]> = [
    [{ qps: 3001 }, /body\/qps must be <= 3000/],
    [{ qps: -5 }, /body\/qps must be >= 0/],
    [{ qps: 1.5 }, /body\/qps must be integer/],
    [{ qps: '10' }, /body\/qps must be integer/],
    [{}, /must have required property 'qps'/],
    [{ qps: 1, at: second }, /body\/at must be an epoch second after the current one .* in the past/],
    [{ qps: 1, at: 'soon' }, /body\/at must be integer/],
    [{ qps: 1, extra: 1 }, /must NOT have additional properties/],
  ];
  for (const [payload, re] of cases) {
    const res = await post(payload);
    t.is(res.statusCode, 400, JSON.stringify(payload));
    t.is(res.json().code, 'HB_BAD_REQUEST');
    t.regex(res.json().message, re);
  }
  const notJson = await app.inject({ method: 'POST', url: '/qps', payload: '{nope', headers: { 'content-type': 'application/json' } });
  t.is(notJson.statusCode, 400);
  t.is(calls.length, 2);
});

test('control: token guards POST /qps (401), GETs stay open', async (t) => {
  const { app, calls } = control('s3cret');
  const none = await app.inject({ method: 'POST', url: '/qps', payload: { qps: 1 } });
  t.is(none.statusCode, 401);
  t.regex(none.json().message, /missing Authorization/);
  const wrong = await app.inject({ method: 'POST', url: '/qps', payload: { qps: 1 }, headers: { authorization: 'Bearer nope' } });
  t.is(wrong.statusCode, 401);
  t.is(wrong.json().code, 'HB_UNAUTHORIZED');
  const right = await app.inject({ method: 'POST', url: '/qps', payload: { qps: 1 }, headers: { authorization: 'Bearer s3cret' } });
  t.is(right.statusCode, 200);
  t.is(calls.length, 1);
  t.is((await app.inject({ method: 'GET', url: '/stats' })).statusCode, 200);
  t.is((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
  t.is((await app.inject({ method: 'GET', url: '/metrics' })).body, 'x 1\n');
});

/** A scheduler on a fake clock whose timer callback the test calls by hand. */
function fakeScheduler(opts: { n: number; total: number; qps: number; mode: 'spread' | 'burst'; down?: Set<number> }) {
  const clock = { ms: 1_795_000_000_000 };
  const recs = new SecondRecs();
  const shots: Array<[number, number]> = [];
  const ids = Uint32Array.from({ length: opts.n }, (_, i) => i);
  const s = new Scheduler({
    ids,
    totalUsers: opts.total,
    rule: 'window',
    mode: opts.mode,
    now: () => clock.ms,
    recs,
    shaker: { shake: (i, at) => (opts.down?.has(i) ? false : (shots.push([i, at]), true)) },
  });
  s.setChanges([{ at: 0, qps: opts.qps }]);
  const step = () => s.step();
  return { s, clock, recs, shots, step };
}

test('scheduler: spread fires each due user once at its offset, never early', (t) => {
  const f = fakeScheduler({ n: 1000, total: 1000, qps: 250, mode: 'spread' });
  f.clock.ms = 1_795_000_000_000 - 1;
  f.s.start();
  for (let ms = 0; ms < 1000; ms += 3) {
    f.clock.ms = 1_795_000_000_000 + ms;
    f.step();
  }
  t.is(f.shots.length, 250);
  t.is(new Set(f.shots.map(([i]) => i)).size, 250);
  for (const [, at] of f.shots) t.true(at >= 1_795_000_000_000 && at < 1_795_000_000_900);
  t.is(f.s.missed, 0);
  f.s.stop();
});

test('scheduler: down users and a blocked loop count missed, no catch-up burst', (t) => {
  const f = fakeScheduler({ n: 1000, total: 1000, qps: 400, mode: 'spread', down: new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) });
  const t0 = 1_795_000_000;
  f.clock.ms = t0 * 1000 - 1;
  f.s.start();
  f.clock.ms = t0 * 1000 + 1;
  f.step();
  // The loop blocks until 0.97 s: past the deadline, nothing of t0 beyond offset 1 ms is sent.
  f.clock.ms = t0 * 1000 + 970;
  f.step();
  const sentT0 = f.shots.length;
  t.true(sentT0 < 10, `sent ${sentT0}`);
  // Then it blocks for 3 whole seconds: t0+1, t0+2 are missed entirely, t0+3 starts afresh at 0.5 s.
  f.clock.ms = (t0 + 3) * 1000 + 500;
  f.step();
  const c = (s: number) => f.recs.rec(s).c;
  t.is(c(t0)[R.sent] + c(t0)[R.missed], 400);
  t.is(c(t0 + 1)[R.missed], 400);
  t.is(c(t0 + 2)[R.missed], 400);
  t.is(c(t0 + 1)[R.sent], 0);
  // In t0+3 exactly the due users with an offset <= 500 ms fired so far (the down ones missed), each at its own offset.
  const late = f.shots.slice(sentT0);
  const plan = new Uint32Array(1000);
  const k = f.s.plan(t0 + 3, plan);
  const dueBy500 = [...plan.subarray(0, k)].filter((i) => offsetMs('spread', i) <= 500);
  t.deepEqual(late.map(([i]) => i).sort((a, b) => a - b), dueBy500.filter((i) => i >= 10).sort((a, b) => a - b));
  for (const [i, at] of late) t.is(at, (t0 + 3) * 1000 + offsetMs('spread', i), `user ${i} at its offset`);
  t.is(c(t0 + 3)[R.missed], dueBy500.filter((i) => i < 10).length);
  f.s.stop();
});

test('scheduler: burst fires all due users at the top of the second', (t) => {
  const f = fakeScheduler({ n: 600, total: 1200, qps: 600, mode: 'burst' });
  const t0 = 1_795_000_010;
  f.clock.ms = t0 * 1000 - 1;
  f.s.start();
  f.clock.ms = t0 * 1000 + 2;
  f.step();
  t.is(f.shots.length, countFiring('window', 1200, 600, t0, 0, 600));
  t.true(f.shots.every(([, at]) => at === t0 * 1000));
  f.s.stop();
});

test('stats: worker deltas merge into per-second entries with percentiles', (t) => {
  const w1 = new SecondRecs();
  const w2 = new SecondRecs();
  w1.add(100, R.sent, 10);
  w1.rec(100).h.record(2000);
  w2.add(100, R.sent, 5);
  w2.rec(100).h.record(8000);
  w2.add(101, R.missed, 3);
  const agg = new AgentStats(10);
  for (const w of [w1, w2]) for (const [s, c, h] of w.flush()) agg.merge(s, c, h);
  const [e100, e101] = agg.range(100, 101);
  t.is(e100.sent, 15);
  t.is(e100.maxMs, 8);
  t.true(e100.p50Ms >= 1.9 && e100.p50Ms <= 2.05);
  t.is(e101.missed, 3);
  t.is(w1.flush().length, 0);
});

test('controller push: samples wait while the controller is away and go out in order, bounded', async (t) => {
  const { ControllerPush, MAX_QUEUED_SAMPLES } = await import('../agent/push.ts');
  const { createServer } = await import('node:http');
  const got: number[] = [];
  let up = false;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (!up) return void res.writeHead(503).end('{}');
      if (req.url!.endsWith('/samples')) got.push(JSON.parse(body).second);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const lines: string[] = [];
  const push = new ControllerPush(`http://127.0.0.1:${(server.address() as { port: number }).port}`, 'a', () => ({ id: 'a', controlUrl: 'http://127.0.0.1:1' }), undefined, { stderr: (l) => lines.push(l) });
  up = true;
  await push.tick({ second: 1 });
  up = false;
  for (let s = 2; s <= 5; s++) await push.tick({ second: s });
  t.is(push.queued, 4, 'kept while the controller answers 503');
  up = true;
  await push.tick({ second: 6 });
  t.deepEqual(got, [1, 2, 3, 4, 5, 6], 'late, in order, none lost');
  t.is(push.queued, 0);
  up = false;
  for (let s = 0; s < MAX_QUEUED_SAMPLES + 5; s++) await push.tick({ second: 100 + s });
  t.is(push.queued, MAX_QUEUED_SAMPLES);
  t.is(push.dropped, 5);
  t.true(lines.some((l) => /sample push failed/.test(l)));
});

test('stats: changed seconds are taken once, and again only when they change', async (t) => {
  const { AgentStats, N_REC } = await import('../agent/stats.ts');
  const stats = new AgentStats();
  const c = new Array(N_REC).fill(0);
  c[0] = 5;
  stats.merge(100, c, '');
  stats.merge(101, c, '');
  stats.merge(103, c, '');
  t.deepEqual(stats.takeChanged(102), [100, 101], 'only seconds up to the complete one');
  t.deepEqual(stats.takeChanged(102), [], 'taken once');
  stats.merge(100, c, ''); // a slow reply amends second 100
  t.deepEqual(stats.takeChanged(103), [100, 103]);
  t.is(stats.get(100)!.c[0], 10);
});

test('scheduler: a restarted worker accounts every second from resumeAt on: begun ones missed whole, later ones fired', (t) => {
  const S = 1_795_000_000;
  const late = fakeScheduler({ n: 1000, total: 1000, qps: 250, mode: 'spread' });
  late.clock.ms = S * 1000 + 500;
  late.s.start(S - 1); // took over from S-1 but only started in the middle of S
  t.is(late.recs.rec(S - 1).c[R.missed], 250);
  t.is(late.recs.rec(S).c[R.missed], 250);
  for (let ms = 0; ms < 1000; ms += 5) {
    late.clock.ms = (S + 1) * 1000 + ms;
    late.step();
  }
  t.is(late.shots.length, 250, 'the next second is fired in full');
  late.s.stop();

  const early = fakeScheduler({ n: 1000, total: 1000, qps: 250, mode: 'spread' });
  early.clock.ms = S * 1000 + 500;
  early.s.start(S + 2); // second S+1 is still the parent's to count
  for (let ms = 0; ms < 2000; ms += 5) {
    early.clock.ms = (S + 1) * 1000 + ms;
    early.step();
  }
  t.is(early.recs.rec(S + 1).c[R.missed] + early.recs.rec(S + 1).c[R.sent], 0, 'nothing of S+1 here');
  t.is(early.shots.length, 250);
  t.true(early.shots.every(([, at]) => at >= (S + 2) * 1000));
  t.is(early.s.missed, 0);
  early.s.stop();
});
