// Every controller route through app.inject(), with an injected clock; fake agents are real HTTP
// servers on 127.0.0.1 port 0.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Histogram } from '../common/histogram.ts';
import { closedPort, fakeAgent, setup } from './helpers/controller.ts';

test('controller: agents register (201, then 200 on re-register) and are listed', async (t) => {
  const { app, post } = setup(t);
  const r1 = await post('/agents', { id: 'vm-01', controlUrl: 'http://127.0.0.1:9090', users: { first: 0, count: 100 }, totalUsers: 300, workers: 2 });
  t.is(r1.statusCode, 201);
  t.is(r1.json().status, 'registered');
  const r2 = await post('/agents', { id: 'vm-01', controlUrl: 'http://127.0.0.1:9091' });
  t.is(r2.statusCode, 200);
  const list = (await app.inject({ url: '/agents' })).json().agents;
  t.is(list.length, 1);
  t.is(list[0].controlUrl, 'http://127.0.0.1:9091');
});

test('controller: bad registration and sample bodies get 400 naming the field', async (t) => {
  const { post } = setup(t);
  const cases: Array<[string, unknown, RegExp]> = [
    ['/agents', '{oops', /body is not valid JSON/],
    ['/agents', { controlUrl: 'http://127.0.0.1:1' }, /required property 'id'/],
    ['/agents', { id: 'bad id!', controlUrl: 'http://127.0.0.1:1' }, /body\/id must match pattern/],
    ['/agents', { id: 'a', controlUrl: 'ftp://x' }, /body\/controlUrl must match pattern/],
    ['/agents', { id: 'a', controlUrl: 'http://127.0.0.1:1', users: { first: -1, count: 2 } }, /body\/users\/first must be >= 0/],
  ];
  for (const [url, body, msg] of cases) {
    const r = await post(url, body);
    t.is(r.statusCode, 400, JSON.stringify(body));
    t.is(r.json().code, 'HB_BAD_REQUEST');
    t.regex(r.json().message, msg);
  }
  await post('/agents', { id: 'a', controlUrl: 'http://127.0.0.1:1' });
  const s1 = await post('/agents/a/samples', { sent: 1 });
  t.is(s1.statusCode, 400);
  t.regex(s1.json().message, /required property 'second'/);
  const s2 = await post('/agents/a/samples', { second: 1, sent: 'many' });
  t.regex(s2.json().message, /body\/sent must be number/);
  const s3 = await post('/agents/a/samples', { second: 1_800_000_000, hist: 'garbage' });
  t.is(s3.statusCode, 400);
  t.regex(s3.json().message, /body\/hist is not an encoded histogram/);
});

test('controller: samples of an unknown agent get 404', async (t) => {
  const { post } = setup(t);
  const r = await post('/agents/ghost/samples', { second: 1_800_000_000 });
  t.is(r.statusCode, 404);
  t.is(r.json().code, 'HB_NOT_FOUND');
  t.regex(r.json().message, /agent ghost is not registered/);
});

test('controller: POST /qps picks one second and fans {qps, at} out to every agent', async (t) => {
  // A generous call timeout: on a loaded CI machine the first fetch of a process can take seconds.
  const { post, app, ctl, now } = setup(t, { token: 'tok', callTimeoutMs: 10_000 });
  const a = await fakeAgent(t);
  const b = await fakeAgent(t);
  const auth = { authorization: 'Bearer tok' };
  await post('/agents', { id: 'a', controlUrl: a.url, totalUsers: 1000 }, auth);
  await post('/agents', { id: 'b', controlUrl: b.url, totalUsers: 1000 }, auth);
  const r = await post('/qps', { qps: 500 }, auth);
  t.is(r.statusCode, 200);
  const body = r.json();
  const at = Math.floor(now() / 1000) + 2;
  t.deepEqual(body, { qps: 500, at, requestedAt: now(), agents: [{ id: 'a', ok: true }, { id: 'b', ok: true }] });
  t.deepEqual(a.got, [{ body: { qps: 500, at }, auth: 'Bearer tok' }]);
  t.deepEqual(b.got, [{ body: { qps: 500, at }, auth: 'Bearer tok' }]);
  const g = (await app.inject({ url: '/qps' })).json();
  t.is(g.history.length, 1);
  t.is(g.qps, null, 'not in effect before its second');
  t.is(ctl.targetAt(at), 500);
  t.is(ctl.targetAt(at - 1), null);
  const runJson = JSON.parse(readFileSync(join(ctl.run!.dir, 'run.json'), 'utf8'));
  t.is(runJson.qpsChanges[0].at, at);
});

test('controller: an agent that refuses or is down is reported per agent', async (t) => {
  const { post } = setup(t);
  const ok = await fakeAgent(t);
  const refusing = await fakeAgent(t, 400);
  await post('/agents', { id: 'ok', controlUrl: ok.url });
  await post('/agents', { id: 'refusing', controlUrl: refusing.url });
  const closed = await closedPort();
  await post('/agents', { id: 'down', controlUrl: `http://127.0.0.1:${closed}` });
  const r = await post('/qps', { qps: 10 });
  t.is(r.statusCode, 200);
  const agents = r.json().agents;
  t.deepEqual(agents[0], { id: 'ok', ok: true });
  t.false(agents[1].ok);
  t.regex(agents[1].error, /agent answered 400: at is in the past/);
  t.false(agents[2].ok);
  t.regex(agents[2].error, new RegExp(`127\\.0\\.0\\.1:${closed} unreachable: ECONNREFUSED`));
});

test('controller: POST /qps validation: no agents 409, above the fleet 400, bad body 400', async (t) => {
  const { post } = setup(t);
  const none = await post('/qps', { qps: 10 });
  t.is(none.statusCode, 409);
  t.is(none.json().code, 'HB_CONFLICT');
  await post('/agents', { id: 'a', controlUrl: 'http://127.0.0.1:9', totalUsers: 100 });
  const over = await post('/qps', { qps: 101 });
  t.is(over.statusCode, 400);
  t.regex(over.json().message, /body\/qps \(101\) must be <= the fleet's 100 users/);
  t.regex((await post('/qps', { qps: 1.5 })).json().message, /body\/qps must be integer/);
  t.regex((await post('/qps', { qps: -1 })).json().message, /body\/qps must be >= 0/);
  t.regex((await post('/qps', {})).json().message, /required property 'qps'/);
  t.regex((await post('/qps', { qps: 1, at: 5 })).json().message, /body\/at \(5\) must be after the current second/);
});

test('controller: state-changing routes need the token, reads do not', async (t) => {
  const { post, app } = setup(t, { token: 'sekret' });
  for (const url of ['/agents', '/agents/a/samples', '/qps', '/runs']) {
    const missing = await post(url, {});
    t.is(missing.statusCode, 401, url);
    t.is(missing.json().code, 'HB_UNAUTHORIZED');
    t.is((await post(url, {}, { authorization: 'Bearer nope' })).statusCode, 401, url);
  }
  for (const url of ['/agents', '/qps', '/runs', '/health', '/series']) {
    t.not((await app.inject({ url })).statusCode, 401, url);
  }
});

test('controller: a late sample lands in its own second and amends the written line', async (t) => {
  const { post, ctl, advance, now } = setup(t);
  const s0 = Math.floor(now() / 1000);
  await post('/agents', { id: 'a', controlUrl: 'http://127.0.0.1:9' });
  await post('/agents', { id: 'b', controlUrl: 'http://127.0.0.1:9' });
  const h = new Histogram();
  h.record(1500);
  await post('/agents/a/samples', { second: s0, sent: 10, answered: 10, hist: h.encode() });
  advance(4000);
  const first = ctl.flush();
  t.deepEqual(
    first.map((r) => r.second),
    [s0, s0 + 1],
  );
  t.is(first[0].client.sent, 10);
  t.deepEqual(first[0].missingAgents, ['b']);
  const late = await post('/agents/b/samples', { second: s0, sent: 5, answered: 5 });
  t.true(late.json().late);
  advance(1000);
  const second = ctl.flush();
  const amended = second.find((r) => r.second === s0)!;
  t.true(amended.amended);
  t.is(amended.client.sent, 15, 'the late sample counts in its own second');
  t.deepEqual(amended.missingAgents, []);
  t.is(second.find((r) => r.second === s0 + 2)!.client.sent, 0, 'not in the current second');
  const lines = readFileSync(join(ctl.run!.dir, 'series.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.is(lines.filter((l) => l.second === s0).length, 2);
  t.is(lines.at(-1).second >= s0 + 2, true);
});

test('controller: agents whose samples stop are marked lost and health says so', async (t) => {
  const { post, app, ctl, advance, now, logs } = setup(t);
  await post('/agents', { id: 'a', controlUrl: 'http://127.0.0.1:9' });
  await post('/agents/a/samples', { second: Math.floor(now() / 1000) });
  advance(3000);
  ctl.checkLost();
  t.is((await app.inject({ url: '/agents' })).json().agents[0].status, 'active');
  advance(3000);
  ctl.checkLost();
  t.is((await app.inject({ url: '/agents' })).json().agents[0].status, 'lost');
  const h = await app.inject({ url: '/health' });
  t.is(h.statusCode, 503);
  t.deepEqual(h.json().agents.lost, ['a']);
  t.true(logs.some((l) => /agent a lost: no sample for 6 s/.test(l)));
  await post('/agents/a/samples', { second: Math.floor(now() / 1000) });
  t.is((await app.inject({ url: '/agents' })).json().agents[0].status, 'active');
});


test('controller: /series and /health answer through their schemas', async (t) => {
  const { post, app, ctl, advance, now } = setup(t);
  await post('/agents', { id: 'a', controlUrl: 'http://127.0.0.1:1' });
  await post('/agents/a/samples', { second: Math.floor(now() / 1000), sent: 7, answered: 7 });
  advance(4000);
  ctl.flush();
  const series = (await app.inject({ url: '/series' })).json();
  t.is(series.run.id, ctl.run!.id);
  t.is(series.rows[0].client.sent, 7, 'nested rows pass through the schema intact');
  t.is(series.rows[0].agents.a.sent, 7);
  t.is(series.rows[0].hist, undefined, 'the histogram stays on disk');
  const health = (await app.inject({ url: '/health' })).json();
  t.deepEqual(health, { ok: true, run: ctl.run!.id, agents: { total: 1, active: 1, lost: [] }, stub: null });
});
