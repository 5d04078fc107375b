// The stub as a user sees it: a real `hongbao stub` process, real WebSocket clients on 127.0.0.x.
// The tests run one after another: each starts a stub (a primary and its workers), and twenty of them
// starting at once on a 2-core machine is a start-up race, not a test of the stub.
import test from 'ava';
import WebSocket from 'ws';
import { WireError } from '../common/errors.ts';
import { Cmd, ShakeResult, encodeLogin, encodeShake, frame } from '../common/wire.ts';
import { amountOf } from '../stub/envelopes.ts';
import { CliProcess } from '../common/child.ts';
import { CLI, runCli, sleep, startStub, waitFor } from './helpers/process.ts';
import { TestClient } from './helpers/wsclient.ts';

const now = () => Math.floor(Date.now() / 1000);

/** Waits until the wall clock is early in a second, so a burst lands in one second. */
async function startOfSecond(): Promise<number> {
  await sleep(1000 - (Date.now() % 1000) + 20);
  return now();
}

async function statsFor(stub: Awaited<ReturnType<typeof startStub>>, from: number, to: number) {
  const body = await waitFor(`stats up to ${to}`, async () => {
    const r = await stub.get(`/stats?since=${from}`);
    const last = r.body.seconds.at(-1);
    return last && last.second >= to ? r.body : undefined;
  });
  return body.seconds.filter((s: { second: number }) => s.second >= from && s.second <= to);
}

test.serial('stub: login then shake answers empty, then won after the generator filled the SET', async (t) => {
  const stub = await startStub(t, ['--sets', '1']);
  const c = await TestClient.login(stub.url, 7);
  t.teardown(() => c.close());
  c.shake(7);
  const empty = await c.next(Cmd.SHAKE_REPLY);
  t.deepEqual([empty.userId, empty.result, empty.envelopeId, empty.amount], [7, ShakeResult.EMPTY, 0, 0]);
  t.is((await stub.post('/generator', { rate: 5, total: 5 })).status, 200);
  await waitFor('5 envelopes queued', async () => (await stub.get('/audit')).body.generator.inQueues === 5);
  c.shake(7);
  const won = await c.next(Cmd.SHAKE_REPLY);
  t.is(won.result, ShakeResult.WON);
  t.is(won.envelopeId, 1, 'the SET queue is FIFO from id 1');
  t.is(won.amount, amountOf(1));
  const audit = (await stub.get('/audit')).body;
  t.is(audit.generator.won, 1);
  t.is(audit.generator.inQueues, 4);
  t.true(audit.generator.reconciles);
});

test.serial('stub: the generator pushes exactly rate envelopes in every second until total', async (t) => {
  const stub = await startStub(t, ['--workers', '2']);
  const r = await stub.post('/generator', { rate: 40, total: 120 });
  t.is(r.status, 200);
  const start = r.body.startSecond;
  const secs = await statsFor(stub, start - 1, start + 3);
  const audit = (await stub.get('/audit')).body.generator;
  t.is(secs[0].generated, 0, 'nothing before the announced start second');
  // A machine stalled for a third of a second makes the stub count missed envelopes instead of
  // pushing them late; only then may a second fall short, never above the rate.
  for (const s of secs.slice(1)) t.true(s.generated <= 40);
  if (audit.missed === 0) {
    t.deepEqual(
      secs.map((s: { generated: number }) => s.generated),
      [0, 40, 40, 40, 0],
    );
  }
  t.is(audit.generated + audit.missed, 120);
  t.is(audit.inQueues, audit.generated);
  t.true(audit.reconciles);
  t.true(audit.status.finished);
});

test.serial('stub: shakes above --max-qps served per second get overload', async (t) => {
  const stub = await startStub(t, ['--max-qps', '10']);
  const c = await TestClient.login(stub.url, 3);
  t.teardown(() => c.close());
  const first = await startOfSecond();
  for (let i = 0; i < 30; i++) c.shake(3);
  const results: number[] = [];
  for (let i = 0; i < 30; i++) results.push((await c.next(Cmd.SHAKE_REPLY)).result);
  const last = now();
  // The burst lands in one second unless this machine stalls; either way each second serves <= 10.
  const secs = await statsFor(stub, first, last);
  let served = 0;
  for (const s of secs) {
    t.is(s.empty, Math.min(s.shakes, 10), `second ${s.second} serves up to --max-qps`);
    t.is(s.overload, s.shakes - s.empty);
    served += s.empty;
  }
  t.is(secs.reduce((n: number, s: { shakes: number }) => n + s.shakes, 0), 30);
  t.is(results.filter((r) => r === ShakeResult.EMPTY).length, served);
  t.is(results.filter((r) => r === ShakeResult.OVERLOAD).length, 30 - served);
  if (secs.length === 1 || secs[1].shakes === 0) t.is(served, 10);
});

test.serial('stub: sent envelopes reach exactly the named users, claims conserve every cent', async (t) => {
  const stub = await startStub(t, ['--workers', '2']);
  const users = [0, 1, 2, 3, 4, 5];
  const clients = await Promise.all(users.map((u) => TestClient.login(stub.url, u, `127.0.0.${2 + (u % 3)}`)));
  t.teardown(() => clients.forEach((c) => c.close()));
  const r = await stub.post('/sender', { rate: 20, total: 40, users: 3, minUser: 0, maxUser: 5, amount: 1000 });
  t.is(r.status, 200);
  let claimed = 0;
  let notices = 0;
  const outsiders: Array<[number, number]> = [];
  await Promise.all(
    clients.map(async (c, u) => {
      for (;;) {
        let notice;
        try {
          notice = await c.next(Cmd.NOTICE, 4000);
        } catch {
          return; // no more notices for this user
        }
        notices++;
        t.true(notice.users.includes(u), `user ${u} got a notice naming ${notice.users}`);
        t.is(notice.amount, 1000);
        c.claim(u, notice.envelopeId);
        const reply = await c.next(Cmd.CLAIM_REPLY);
        t.is(reply.envelopeId, notice.envelopeId);
        t.true(reply.amount >= 1);
        claimed += reply.amount;
        c.claim(u, notice.envelopeId);
        t.is((await c.next(Cmd.CLAIM_REPLY)).amount, 0, 'second claim by the same user gets nothing');
        outsiders.push([users.find((x) => !notice.users.includes(x))!, notice.envelopeId]);
      }
    }),
  );
  for (const [outsider, id] of outsiders) {
    clients[outsider].claim(outsider, id);
    t.is((await clients[outsider].next(Cmd.CLAIM_REPLY)).amount, 0, 'a user the envelope does not name gets nothing');
  }
  t.is(notices, 120, '40 envelopes x 3 named users');
  t.is(claimed, 40 * 1000, 'portions sum exactly to the amounts');
  const audit = (await stub.get('/audit')).body.sender;
  t.is(audit.sent, 40);
  t.is(audit.sentAmount, 40000);
  t.is(audit.claimed, 120);
  t.is(audit.claimedAmount, 40000);
  t.is(audit.remainingAmount, 0);
  t.true(audit.reconciles);
  t.is(audit.claims, 120 * 2 + outsiders.length, 'every claim request counted, good or not');
});

test.serial('stub: chat reaches the addressee across workers', async (t) => {
  const stub = await startStub(t, ['--workers', '2']);
  const clients = await Promise.all([10, 11, 12, 13].map((u) => TestClient.login(stub.url, u)));
  t.teardown(() => clients.forEach((c) => c.close()));
  // Users 10 and 12 belong to worker 0's SETs, 11 and 13 to worker 1's: whichever worker accepted a
  // connection, it ends up with its owner. Workers report once a second, so wait for both reports.
  // (the wait is the assertion: it fails unless each worker ends up holding the 2 users of its SETs)
  await waitFor('each worker to hold the 2 users of its SETs', async () => {
    const h = (await stub.get('/health')).body as { connections: number; workers: Array<{ connections: number }> };
    return h.connections === 4 && h.workers.every((w) => w.connections === 2);
  });
  for (const [i, c] of clients.entries()) c.chat(10 + i, 10 + ((i + 1) % 4), `hi from ${10 + i} 🧧`);
  for (const [i, c] of clients.entries()) {
    const m = await c.next(Cmd.CHAT);
    const from = 10 + ((i + 3) % 4);
    t.deepEqual([m.userId, m.toUserId, m.text], [from, 10 + i, `hi from ${from} 🧧`]);
  }
});

test.serial('stub: two workers, many source IPs: counters and connections are merged', async (t) => {
  const stub = await startStub(t, ['--workers', '2']);
  const users = Array.from({ length: 40 }, (_, i) => 1000 + i);
  const clients = await Promise.all(users.map((u, i) => TestClient.login(stub.url, u, `127.0.0.${2 + (i % 4)}`)));
  t.teardown(() => clients.forEach((c) => c.close()));
  const first = await startOfSecond();
  clients.forEach((c, i) => {
    for (let k = 0; k < 5; k++) c.shake(users[i]);
  });
  for (const c of clients) for (let k = 0; k < 5; k++) await c.next(Cmd.SHAKE_REPLY);
  const secs = await statsFor(stub, first, now());
  t.is(secs.reduce((n: number, s: { shakes: number }) => n + s.shakes, 0), 200);
  t.is(secs.reduce((n: number, s: { empty: number }) => n + s.empty, 0), 200);
  const st = (await stub.get('/stats')).body;
  t.is(st.connections, 40);
  const metrics = (await stub.get('/metrics')).body as string;
  t.regex(metrics, /^hongbao_stub_connections 40$/m);
  t.regex(metrics, /^hongbao_stub_logins_total 40$/m);
  t.regex(metrics, /^hongbao_stub_shakes_total 200$/m);
});

test.serial('stub: bad frames close one connection with an error frame, everyone else is served', async (t) => {
  const stub = await startStub(t);
  const good = await TestClient.login(stub.url, 1);
  t.teardown(() => good.close());
  const shortFrame = Buffer.from([0, 3, 0]);
  const lengthLie = frame((b, o) => encodeShake(b, o, now(), 2));
  lengthLie.writeUInt16BE(99, 0);
  const unknown = frame((b, o) => encodeShake(b, o, now(), 2));
  unknown.writeUInt16BE(42, 2);
  const oversized = Buffer.alloc(5000);
  oversized.writeUInt16BE(5000 & 0xffff, 0);
  const cases: Array<{ name: string; login: boolean; payload: Buffer | string; code: number; close: number }> = [
    { name: 'short frame', login: true, payload: shortFrame, code: WireError.SHORT_FRAME, close: 1007 },
    { name: 'length field lies', login: true, payload: lengthLie, code: WireError.LENGTH_MISMATCH, close: 1007 },
    { name: 'unknown cmd', login: true, payload: unknown, code: WireError.UNKNOWN_CMD, close: 1007 },
    { name: 'oversized frame', login: true, payload: oversized, code: WireError.TOO_BIG, close: 1008 },
    { name: 'text frame', login: true, payload: 'hello', code: WireError.TEXT_FRAME, close: 1007 },
    { name: 'shake before login', login: false, payload: frame((b, o) => encodeShake(b, o, now(), 2)), code: WireError.NOT_LOGGED_IN, close: 1008 },
    { name: 'shake for another user', login: true, payload: frame((b, o) => encodeShake(b, o, now(), 3)), code: WireError.WRONG_USER, close: 1008 },
    { name: 'second login', login: true, payload: frame((b, o) => encodeLogin(b, o, now(), 2)), code: WireError.ALREADY_LOGGED_IN, close: 1008 },
    { name: 'server-only cmd', login: true, payload: frame((b, o) => encodeShake(b, o, now(), 2)).fill(0, 2, 4).fill(3, 3, 4), code: WireError.BAD_BODY, close: 1007 },
  ];
  for (const c of cases) {
    const bad = c.login ? await TestClient.login(stub.url, 2) : await TestClient.open(stub.url);
    bad.send(c.payload);
    const err = await bad.next(Cmd.ERROR);
    t.is(err.code, c.code, c.name);
    t.truthy(err.text, `${c.name}: error frame explains itself`);
    t.is((await bad.closed).code, c.close, c.name);
    good.shake(1);
    t.is((await good.next(Cmd.SHAKE_REPLY)).result, ShakeResult.EMPTY, `still serving others after ${c.name}`);
  }
  // Beyond ws's 64 KiB payload limit the connection is closed with 1009 by the WebSocket layer.
  const huge = await TestClient.login(stub.url, 9);
  huge.send(Buffer.alloc(70 * 1024));
  t.is((await huge.closed).code, 1009);
  good.shake(1);
  t.is((await good.next(Cmd.SHAKE_REPLY)).result, ShakeResult.EMPTY);
  // Each bad frame is counted once, the 1009 too (workers report once a second: the wait is the assertion).
  await waitFor(`${cases.length + 1} errors counted`, async () => {
    const m = (await stub.get('/metrics')).body as string;
    const counted = Number(/^hongbao_stub_errors_total (\d+)$/m.exec(m)?.[1]);
    if (counted > cases.length + 1) throw new Error(`${counted} errors counted for ${cases.length + 1} bad frames`);
    return counted === cases.length + 1;
  });
});

test.serial('stub: a server-only command from a client is refused with UNEXPECTED_CMD', async (t) => {
  const stub = await startStub(t);
  const c = await TestClient.login(stub.url, 5);
  const reply = Buffer.alloc(20);
  reply.writeUInt16BE(20, 0);
  reply.writeUInt16BE(Cmd.LOGIN_REPLY, 2);
  c.send(reply);
  t.is((await c.next(Cmd.ERROR)).code, WireError.UNEXPECTED_CMD);
  t.is((await c.closed).code, 1008);
});

test.serial('stub: a newer login of the same user replaces the older connection', async (t) => {
  const stub = await startStub(t);
  const a = await TestClient.login(stub.url, 77);
  const b = await TestClient.login(stub.url, 77);
  t.teardown(() => b.close());
  t.is((await a.next(Cmd.ERROR)).code, WireError.REPLACED);
  t.is((await a.closed).code, 1008);
  b.shake(77);
  t.is((await b.next(Cmd.SHAKE_REPLY)).userId, 77);
});

test.serial('stub: bad HTTP bodies get 400 naming the field, and the stub keeps serving', async (t) => {
  const stub = await startStub(t);
  const cases: Array<[string, unknown, RegExp]> = [
    ['/generator', '{not json', /body is not valid JSON/],
    ['/generator', '', /body is empty/],
    ['/generator', { rate: 'fast', total: 1 }, /body\/rate must be integer/],
    ['/generator', { rate: 1 }, /required property 'total'/],
    ['/generator', { rate: -1, total: 1 }, /body\/rate must be >= 0/],
    ['/generator', { rate: 1, total: 1, extra: true }, /must NOT have additional properties/],
    ['/sender', '[1,2', /body is not valid JSON/],
    ['/sender', { rate: 1, total: 1, minUser: 5, maxUser: 1 }, /maxUser \(1\) must be >= body\/minUser \(5\)/],
    ['/sender', { rate: 1, total: 1, minUser: 0, maxUser: 1 }, /users \(3\) must be <= the 2 users/],
    ['/sender', { rate: 1, total: 1, minUser: 0, maxUser: 9, amount: 2 }, /amount \(2 cents\) must be >= body\/users \(3\)/],
    ['/sender', { rate: 1, total: 1, minUser: -1, maxUser: 9 }, /body\/minUser must be >= 0/],
  ];
  for (const [path, body, message] of cases) {
    const r = await stub.post(path, body);
    t.is(r.status, 400, `${path} ${JSON.stringify(body)}`);
    t.is(r.body.code, 'HB_BAD_REQUEST');
    t.regex(r.body.message, message);
  }
  const q = await stub.get('/stats?since=yesterday');
  t.is(q.status, 400);
  t.regex(q.body.message, /since/);
  const nf = await stub.get('/nope');
  t.is(nf.status, 404);
  t.is(nf.body.code, 'HB_NOT_FOUND');
  t.is((await stub.get('/health')).status, 200);
});

test.serial('stub: with a token, POST routes need it and GET routes do not', async (t) => {
  const stub = await startStub(t, [], { HONGBAO_TOKEN: 's3cret' });
  const missing = await stub.post('/generator', { rate: 1, total: 1 });
  t.is(missing.status, 401);
  t.is(missing.body.code, 'HB_UNAUTHORIZED');
  t.regex(missing.body.message, /missing Authorization/);
  const wrong = await stub.post('/sender', { rate: 1, total: 1, minUser: 0, maxUser: 9 }, { authorization: 'Bearer nope' });
  t.is(wrong.status, 401);
  t.regex(wrong.body.message, /wrong bearer token/);
  const badBodyNoToken = await stub.post('/generator', '{bad');
  t.is(badBodyNoToken.status, 401, 'auth is checked before the body');
  const ok = await stub.post('/generator', { rate: 1, total: 1 }, { authorization: 'Bearer s3cret' });
  t.is(ok.status, 200);
  t.is((await stub.get('/stats')).status, 200);
  t.is((await stub.get('/audit')).status, 200);
});

test.serial('stub: a dead worker is reported by /health and replaced; /audit still reconciles and keeps its wins', async (t) => {
  const stub = await startStub(t, ['--workers', '2']);
  // Envelopes in both workers' SETs, some of them won by users of each worker.
  // 6 envelopes in every SET (256 of them): each of the users below wins all of its 5 shakes.
  t.is((await stub.post('/generator', { rate: 1536, total: 1536 })).status, 200);
  await waitFor('the generator to finish', async () => (await stub.get('/audit')).body.generator.status?.finished === true);
  const clients = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((u) => TestClient.login(stub.url, u)));
  t.teardown(() => clients.forEach((c) => c.close()));
  for (let round = 0; round < 5; round++) {
    for (const [u, c] of clients.entries()) c.shake(u);
    for (const c of clients) t.is((await c.next(Cmd.SHAKE_REPLY)).result, ShakeResult.WON);
  }
  // Both workers have reported their 20 wins (they report once a second).
  const won = await waitFor('the wins reported', async () => {
    const a = (await stub.get('/audit')).body.generator;
    return a.won === 40 && (await stub.get('/metrics')).body.includes('hongbao_stub_won_total 40') ? a : undefined;
  });
  t.true(won.reconciles);
  const victim = stub.ready.workers[1];
  process.kill(victim, 'SIGKILL');
  const down = await waitFor('health reports the dead worker', async () => {
    const r = await stub.get('/health');
    return r.status === 503 ? r.body : undefined;
  });
  t.false(down.ok);
  t.is(down.workerDeaths, 1);
  t.true(down.workers.some((w: { alive: boolean; pid: number }) => !w.alive && w.pid === victim));
  const up = await waitFor('replacement worker', async () => {
    const r = await stub.get('/health');
    return r.status === 200 ? r.body : undefined;
  });
  t.is(up.workers[1].restarts, 1);
  t.not(up.workers[1].pid, victim);
  const audit = (await stub.get('/audit')).body.generator;
  t.is(audit.won, 40, 'what the dead worker reported won stays won');
  t.is(audit.generated, 1536);
  t.is(audit.won + audit.inQueues + audit.lostWithWorkers, 1536);
  t.true(audit.lostWithWorkers > 0, 'its queued envelopes died with it');
  t.true(audit.reconciles, JSON.stringify(audit));
  t.regex(stub.stderr(), new RegExp(`worker 1 \\(pid ${victim}\\) died`));
  const c = await TestClient.login(stub.url, 1);
  c.shake(1);
  t.is((await c.next(Cmd.SHAKE_REPLY)).result, ShakeResult.EMPTY);
  c.close();
});

test.serial('stub: invalid flags exit 2 with one line naming the flag', async (t) => {
  const r = await runCli(['stub', '--workers', '0']);
  t.is(r.code, 2);
  t.is(r.stderr.trim(), 'hongbao stub: --workers must be an integer from 1 to 256, got "0"');
  const u = await runCli(['stub', '--port', '1025', '--frobnicate']);
  t.is(u.code, 2);
  t.regex(u.stderr, /unknown option --frobnicate/);
});

test.serial('stub: the ws client library sees a clean close on SIGTERM', async (t) => {
  const stub = await startStub(t);
  const ws = new WebSocket(stub.url);
  await new Promise((r) => ws.once('open', r));
  ws.send(frame((b, o) => encodeLogin(b, o, now(), 1)));
  await new Promise((r) => ws.once('message', r));
  stub.child.kill('SIGTERM');
  const { code } = await stub.exited;
  t.is(code, 0);
});

test.serial('stub: a worker at its open-file limit refuses further connections and says so', async (t) => {
  // prlimit gives the stub a limit of 200 open files; the worker keeps a reserve for its own
  // descriptors and says how many connections that leaves it. 150 clients are more than that.
  const proc = new CliProcess<{ event: string; port: number; httpPort: number }>('stub', ['prlimit', '--nofile=200:200', process.execPath, CLI], ['stub', '--port', '0', '--http-port', '0'], { ...process.env });
  t.teardown(() => proc.stop());
  const ready = await proc.ready();
  const url = `ws://127.0.0.1:${ready.port}`;
  const results = await Promise.allSettled(Array.from({ length: 150 }, (_, i) => TestClient.login(url, i, `127.0.0.${2 + (i % 3)}`)));
  t.teardown(() => results.forEach((r) => r.status === 'fulfilled' && r.value.close()));
  const said = await waitFor('the refusal on stderr', () => /holds (\d+) connections, all its open-file limit allows; refusing more/.exec(proc.stderr()) ?? undefined);
  const cap = Number(said[1]);
  t.true(cap > 100 && cap < 150, `a cap of ${cap} under a limit of 200 open files`);
  t.is(results.filter((r) => r.status === 'fulfilled').length, cap, 'exactly as many logged in as it said it holds');
  const health = (await (await fetch(`http://127.0.0.1:${ready.httpPort}/health`)).json()) as { connections: number; ok: boolean };
  t.true(health.ok);
  t.true(health.connections <= cap);
});

for (const workers of [2, 3]) {
  test.serial(`stub: SETs live in one worker each: ${workers} workers, 400 users, 200 envelopes, 400 shakes win 200`, async (t) => {
    const stub = await startStub(t, ['--workers', String(workers), '--acceptors', String(workers)]);
    const users = Array.from({ length: 400 }, (_, u) => u);
    const clients: TestClient[] = [];
    t.teardown(() => clients.forEach((c) => c.close()));
    for (let i = 0; i < users.length; i += 50) {
      clients.push(...(await Promise.all(users.slice(i, i + 50).map((u) => TestClient.login(stub.url, u, `127.0.0.${2 + (u % 4)}`)))));
    }
    const gen = await stub.post('/generator', { rate: 200, total: 200 });
    t.is(gen.status, 200);
    await waitFor('200 envelopes queued', async () => (await stub.get('/audit')).body.generator.inQueues === 200);
    clients.forEach((c, u) => c.shake(u));
    const results = await Promise.all(clients.map((c) => c.next(Cmd.SHAKE_REPLY)));
    t.is(results.filter((r) => r.result === ShakeResult.WON).length, 200, 'every envelope is won: each SET queue is whole');
    const audit = (await stub.get('/audit')).body.generator;
    t.is(audit.won, 200);
    t.is(audit.inQueues, 0);
    t.true(audit.reconciles);
    // Each connection is held by the worker owning its user's SET (256 SETs dealt round-robin).
    const health = await waitFor('every worker reported', async () => {
      const h = (await stub.get('/health')).body;
      return h.connections === 400 ? h : undefined;
    });
    for (const w of health.workers as Array<{ index: number; connections: number; adopted: number; handedOver: number }>) {
      t.is(w.connections, users.filter((u) => (u % 256) % workers === w.index).length, `worker ${w.index} holds its SETs' users`);
    }
    const moved = (health.workers as Array<{ adopted: number; handedOver: number }>).reduce((a, w) => [a[0] + w.adopted, a[1] + w.handedOver], [0, 0]);
    t.is(moved[0], moved[1], 'every released connection was adopted');
    t.true(moved[0] > 0, 'acceptors handed connections to the owners of their SETs');
  });
}

test.serial('stub: a second login of a user replaces the first across workers (one connection per user)', async (t) => {
  const stub = await startStub(t, ['--workers', '2', '--acceptors', '2']);
  // Many tries so that both acceptors take some of the first and second connections.
  for (let k = 0; k < 6; k++) {
    const user = 500 + k;
    const a = await TestClient.login(stub.url, user, '127.0.0.2');
    const b = await TestClient.login(stub.url, user, '127.0.0.3');
    t.is((await a.next(Cmd.ERROR)).code, WireError.REPLACED, `user ${user}: the older connection is replaced`);
    t.is((await a.closed).code, 1008);
    b.shake(user);
    t.is((await b.next(Cmd.SHAKE_REPLY)).userId, user);
    b.close();
  }
});

test.serial('stub: bytes sent right behind the login travel with a handed-over connection', async (t) => {
  const stub = await startStub(t, ['--workers', '2', '--acceptors', '1']);
  // User 1 lives in worker 1; worker 0 accepts, so the connection moves with the shake queued behind the login.
  const c = await TestClient.open(stub.url);
  t.teardown(() => c.close());
  // Two protocol messages in one TCP write: the shake's WebSocket frame arrives in the login's read.
  const ws = c.ws as unknown as { _socket: { write(b: Buffer): void } };
  const masked = (payload: Buffer) => {
    const out = Buffer.alloc(6 + payload.length);
    out[0] = 0x82;
    out[1] = 0x80 | payload.length;
    out.writeUInt32BE(0x01020304, 2);
    for (let i = 0; i < payload.length; i++) out[6 + i] = payload[i] ^ out[2 + (i & 3)];
    return out;
  };
  const login = frame((b, o) => encodeLogin(b, o, now(), 1));
  const shake = frame((b, o) => encodeShake(b, o, now(), 1));
  ws._socket.write(Buffer.concat([masked(login), masked(shake)]));
  t.is((await c.next(Cmd.LOGIN_REPLY)).userId, 1);
  t.is((await c.next(Cmd.SHAKE_REPLY)).result, ShakeResult.EMPTY);
  const h = await waitFor('worker 1 adopted it', async () => {
    const body = (await stub.get('/health')).body;
    return body.workers[1].adopted === 1 ? body : undefined;
  });
  t.is(h.workers[0].handedOver, 1);
  t.is(h.workers[1].connections, 1);
});
