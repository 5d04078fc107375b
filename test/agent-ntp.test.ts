// Clocks: agents whose local clock is off (HONGBAO_AGENT_CLOCK_SKEW_MS, a hidden test option) and that
// take their offset from a real NTP server (Debian's chronyd on a loopback port) fire in the same
// epoch seconds as the stub sees; the same agent with --ntp off says so and fires 3 s early.
import test from 'ava';
import { getJson, postJson, startAgent, startChrony, startStub, stubShakes } from './agent-helpers.ts';
import { needing } from './helpers/tools.ts';

const N = 1200;

// A real NTP server is needed: without chronyd the test is skipped, saying what to install.
const chronyd = needing([['chronyd', 'chrony']], true);

chronyd.test(`skewed clocks corrected by NTP against chronyd: the stub sees the QPS change in the same second${chronyd.why}`, async (t) => {
  t.timeout(40_000);
  const chrony = await startChrony(t);
  const stub = await startStub(t, 1);
  const common = ['--server', `ws://127.0.0.1:${stub.port}`, '--total-users', String(N), '--workers', '1', '--ntp', `127.0.0.1:${chrony.port}`, '--ntp-samples', '6', '--ntp-resync', '5', '--spread-ms', '500'];
  const [fast, slow] = await Promise.all([
    startAgent(t, [...common, '--users', '0:600', '--source-ip', '127.0.0.2-3'], { HONGBAO_AGENT_CLOCK_SKEW_MS: '3000' }),
    startAgent(t, [...common, '--users', '600:600', '--source-ip', '127.0.0.4'], { HONGBAO_AGENT_CLOCK_SKEW_MS: '-2200' }),
  ]);
  await Promise.all([fast, slow].map((a) => a.proc.event('connected', 20000)));
  const line = fast.proc.stderr.map((l) => /clock offset (-?[\d.]+) ms \+\/- ([\d.]+) ms from ntp 127\.0\.0\.1:\d+/.exec(l)).find(Boolean);
  t.truthy(line, fast.proc.stderr.join('\n'));
  t.true(Math.abs(Number(line![1]) + 3000) < 20 && Number(line![2]) < 20, line![0]);
  for (const [a, skew] of [
    [fast, 3000],
    [slow, -2200],
  ] as const) {
    const s = await getJson<{ offsetMs: number; uncertaintyMs: number; clock: string }>(`${a.url}/stats`);
    t.true(Math.abs(s.offsetMs + skew) < 20, `offset ${s.offsetMs} for skew ${skew}`);
    t.true(s.uncertaintyMs >= 0 && s.uncertaintyMs < 20);
    t.regex(s.clock, /^ntp 127\.0\.0\.1:/);
  }
  // `at` is a true epoch second; each agent validates and applies it on its corrected clock.
  const at = Math.floor(Date.now() / 1000) + 2;
  for (const a of [fast, slow]) {
    t.is((await postJson(`${a.url}/qps`, { qps: 300, at })).status, 200);
    t.is((await postJson(`${a.url}/qps`, { qps: 900, at: at + 2 })).status, 200);
  }
  const seen = await stubShakes(stub.httpPort, at - 1, at + 3, 12_000);
  t.deepEqual([...seen], [
    [at - 1, 0],
    [at, 300],
    [at + 1, 300],
    [at + 2, 900],
    [at + 3, 900],
  ]);
  // Periodic resync (every 5 s here) keeps the offset and passes it on.
  const h = await getJson<{ clock: { syncs: number; offsetMs: number; synced: boolean } }>(`${fast.url}/health`);
  t.true(h.clock.syncs >= 2, `syncs ${h.clock.syncs}`);
  t.true(h.clock.synced);
  t.true(Math.abs(h.clock.offsetMs + 3000) < 20);
});

test.serial('controller-less, --ntp off with a skewed clock: the agent says so and its seconds are off', async (t) => {
  t.timeout(30_000);
  const stub = await startStub(t, 1);
  const a = await startAgent(t, ['--server', `ws://127.0.0.1:${stub.port}`, '--total-users', '400', '--users', '0:400', '--workers', '1', '--ntp', 'off', '--spread-ms', '500'], {
    HONGBAO_AGENT_CLOCK_SKEW_MS: '3000',
  });
  await a.proc.event('connected', 20000);
  t.true(a.proc.stderr.some((l) => /--ntp off: using the local clock as is/.test(l)));
  const s = await getJson<{ offsetMs: number; uncertaintyMs: number; clock: string }>(`${a.url}/stats`);
  t.is(s.offsetMs, 0);
  t.is(s.uncertaintyMs, -1);
  t.regex(s.clock, /local clock/);
  // The agent believes it is 3 s later than it is: `at` is in its own (wrong) seconds, and it
  // switches 3 true seconds early. This is what NTP (previous test) corrects.
  const agentNow = Math.floor((Date.now() + 3000) / 1000);
  const at = agentNow + 2;
  t.is((await postJson(`${a.url}/qps`, { qps: 200, at })).status, 200);
  const seen = await stubShakes(stub.httpPort, at - 4, at - 2, 12_000);
  t.deepEqual([...seen], [
    [at - 4, 0],
    [at - 3, 200],
    [at - 2, 200],
  ]);
});
