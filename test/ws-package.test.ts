// The ws package path: the agent with --ws-impl ws (the default is lite, common/wslite.ts, which
// the rest of the suite runs) against the stub, whose one transport is lite.
import test from 'ava';
import { startAgent, getJson, postJson } from './agent-helpers.ts';
import { startStub, waitFor } from './helpers/process.ts';

const WS = ['--ws-impl', 'ws'];

test('agent --ws-impl ws against the stub: logins, shakes and claims add up', async (t) => {
  t.timeout(40_000);
  const stub = await startStub(t, ['--workers', '2']);
  const common = ['--server', stub.url, '--total-users', '400', '--workers', '1', ...WS];
  const agents = await Promise.all([
    startAgent(t, [...common, '--users', '0:200', '--source-ip', '127.0.0.2', '--qps', '100']),
    startAgent(t, [...common, '--users', '200:200', '--source-ip', '127.0.0.3', '--qps', '100']),
  ]);
  await Promise.all(agents.map((a) => a.proc.event('connected', 20_000)));
  t.is((await stub.get('/stats')).body.connections, 400);
  const sender = await postJson(`${stub.base}/sender`, { rate: 20, total: 30, users: 3, minUser: 0, maxUser: 399, amount: 1000 });
  t.is(sender.status, 200, JSON.stringify(sender.json));
  type Audit = { sender: { sent: number; claims: number; claimedAmount: number; remainingAmount: number; reconciles: boolean } };
  const audit = await waitFor('every portion claimed', async () => {
    const a = (await stub.get('/audit')).body as Audit;
    return a.sender.sent === 30 && a.sender.remainingAmount === 0 ? a : undefined;
  }, 15_000);
  t.true(audit.sender.reconciles);
  t.is(audit.sender.claims, 90);
  // Both agents shake (100/s fleet-wide) and get every shake answered.
  const answered = await waitFor('shakes answered', async () => {
    const bodies = await Promise.all(agents.map((a) => getJson<{ seconds: Array<{ sent: number; answered: number; errors: number }> }>(`${a.url}/stats`)));
    const s = { sent: 0, answered: 0, errors: 0 };
    for (const b of bodies) for (const x of b.seconds) (s.sent += x.sent), (s.answered += x.answered), (s.errors += x.errors);
    return s.answered >= 200 ? s : undefined;
  }, 15_000);
  t.is(answered.errors, 0);
  t.true(answered.answered >= answered.sent - 100, `answered ${answered.answered} of ${answered.sent}`);
});
