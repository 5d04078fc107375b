// Claims: when an envelope notice names one of the agent's users, that user claims it once and the
// agent records the amount; the amounts the agents record add up to what the stub's sending service
// sent (portions of every envelope sum exactly to its amount).
import test from 'ava';
import { getJson, postJson, startAgent, startStub, waitFor } from './agent-helpers.ts';

for (const transport of ['ws', 'tcp'] as const) {
test(`notices naming agent users are claimed once; recorded amounts sum to the sent amounts (${transport})`, async (t) => {
  t.timeout(30_000);
  const stub = await startStub(t, 2, 0, ['--tcp-port', '0']);
  const server = transport === 'tcp' ? `tcp://127.0.0.1:${stub.tcpPort}` : `ws://127.0.0.1:${stub.port}`;
  const common = ['--server', server, '--total-users', '400', '--workers', '1'];
  const agents = await Promise.all([
    startAgent(t, [...common, '--users', '0:200', '--source-ip', '127.0.0.2']),
    startAgent(t, [...common, '--users', '200:200', '--source-ip', '127.0.0.3']),
  ]);
  await Promise.all(agents.map((a) => a.proc.event('connected', 20_000)));
  const since = Math.floor(Date.now() / 1000);
  const sender = await postJson(`http://127.0.0.1:${stub.httpPort}/sender`, { rate: 20, total: 30, users: 3, minUser: 0, maxUser: 399, amount: 1000 });
  t.is(sender.status, 200, JSON.stringify(sender.json));
  type Audit = { sender: { sent: number; claims: number; claimedAmount: number; remainingAmount: number; reconciles: boolean } };
  const audit = await waitFor('every portion claimed', async () => {
    const a = await getJson<Audit>(`http://127.0.0.1:${stub.httpPort}/audit`);
    return a.sender.sent === 30 && a.sender.remainingAmount === 0 ? a : undefined;
  }, 15_000);
  t.true(audit.sender.reconciles);
  t.is(audit.sender.claimedAmount, 30_000);
  // The agents' records (claims and amounts, by the second the reply came) say the same.
  const totals = await waitFor('agents recorded all claims', async () => {
    const bodies = await Promise.all(agents.map((a) => getJson<{ seconds: Array<{ claims: number; claimedAmount: number }> }>(`${a.url}/stats?since=${since}`)));
    const sum = { claims: 0, amount: 0 };
    for (const b of bodies) for (const s of b.seconds) (sum.claims += s.claims), (sum.amount += s.claimedAmount);
    return sum.amount === 30_000 ? sum : undefined;
  }, 8_000);
  t.is(totals.claims, 90); // 30 envelopes x 3 named users, each claims exactly once
  t.is(audit.sender.claims, 90);
});
}
