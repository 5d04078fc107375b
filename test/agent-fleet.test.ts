// N agents x M workers x several 127.0.0.x source IPs against the real stub, over WebSocket and over
// the original raw-TCP framing: the stub's per-second shakes are exactly the fleet QPS under both rules, and a QPS change with `at` lands in that same
// second for every agent (no coordinator: each agent computes its own share).
import test, { type ExecutionContext } from 'ava';
import { getJson, postJson, startAgent, startStub, stubShakes, type Agent } from './agent-helpers.ts';

const TOKEN = 'fleet-test-token';
const N = 2400;

interface AgentStatsBody {
  id: string;
  connections: number;
  qps: number;
  seconds: Array<{ second: number; sent: number; answered: number; missed: number; errors: number; p99Ms: number; maxMs: number }>;
}

async function fleet(t: ExecutionContext, rule: string, mode: string, transport: 'ws' | 'tcp' = 'ws') {
  const stub = await startStub(t, 2, 0, transport === 'tcp' ? ['--tcp-port', '0'] : []);
  const server = transport === 'tcp' ? `tcp://127.0.0.1:${stub.tcpPort}` : `ws://127.0.0.1:${stub.port}`;
  const common = ['--server', server, '--total-users', String(N), '--workers', '2', '--rule', rule, '--mode', mode, '--spread-ms', '500', '--ramp', '3000'];
  const agents: Agent[] = await Promise.all([
    startAgent(t, [...common, '--users', '0:1200', '--source-ip', '127.0.0.2-127.0.0.4', '--id', 'a'], { HONGBAO_TOKEN: TOKEN }),
    startAgent(t, [...common, '--users', '1200:1200', '--source-ip', '127.0.0.5-7', '--id', 'b'], { HONGBAO_TOKEN: TOKEN }),
  ]);
  await Promise.all(agents.map((a) => a.proc.event('connected', 20000)));
  return { stub, agents };
}

/** Schedules the given (qps, seconds) phases on every agent; returns [second, qps] expectations. */
async function phases(agents: Agent[], plan: Array<[number, number]>): Promise<Array<[number, number]>> {
  let at = Math.floor(Date.now() / 1000) + 2;
  const want: Array<[number, number]> = [[at - 1, 0]];
  for (const [qps, seconds] of plan) {
    for (const a of agents) {
      const res = await postJson(`${a.url}/qps`, { qps, at }, TOKEN);
      if (res.status !== 200) throw new Error(`POST /qps answered ${res.status}: ${JSON.stringify(res.json)}`);
    }
    for (let s = 0; s < seconds; s++) want.push([at + s, qps]);
    at += seconds;
  }
  return want;
}

async function check(t: ExecutionContext, stubHttp: number, agents: Agent[], want: Array<[number, number]>) {
  const from = want[0][0];
  const to = want[want.length - 1][0];
  const seen = await stubShakes(stubHttp, from, to, (to - Math.floor(Date.now() / 1000) + 8) * 1000);
  t.deepEqual(
    want.map(([s]) => [s, seen.get(s)]),
    want,
    'stub shakes per second',
  );
  // The agents' own records agree: sent per second sums to the target, nothing missed, all answered.
  const bodies = await Promise.all(agents.map((a) => getJson<AgentStatsBody>(`${a.url}/stats?since=${from}`)));
  for (const [s, q] of want) {
    const recs = bodies.map((b) => b.seconds.find((x) => x.second === s));
    t.is(recs.reduce((n, r) => n + (r?.sent ?? 0), 0), q, `agents' sent in ${s}`);
    t.is(recs.reduce((n, r) => n + (r?.missed ?? 0), 0), 0, `agents' missed in ${s}`);
    t.is(recs.reduce((n, r) => n + (r?.answered ?? 0), 0), q, `agents' answered in ${s}`);
  }
  for (const b of bodies) t.is(b.connections, 1200);
}

test.serial('window rule, spread: 2 agents x 2 workers x 3 source IPs each; exact totals and synchronised QPS changes', async (t) => {
  t.timeout(45_000);
  const { stub, agents } = await fleet(t, 'window', 'spread');
  const want = await phases(agents, [
    [700, 3],
    [1333, 3],
    [2400, 2],
  ]);
  await check(t, stub.httpPort, agents, want);
  const body = await getJson<AgentStatsBody>(`${agents[0].url}/stats`);
  t.is(body.id, 'a');
  t.is(body.qps, 2400);
  const busy = body.seconds.filter((s) => s.sent > 0);
  t.true(busy.every((s) => s.p99Ms > 0 && s.maxMs >= s.p99Ms));
  // /metrics: base units and a real Prometheus histogram of every answered shake's latency.
  const metrics = await (await fetch(`${agents[0].url}/metrics`)).text();
  t.false(/_ms\b/.test(metrics), 'no millisecond metric');
  t.regex(metrics, /^hongbao_agent_clock_offset_seconds 0$/m);
  t.regex(metrics, /^# TYPE hongbao_agent_shake_latency_seconds histogram$/m);
  const answered = Number(/^hongbao_agent_answered_total (\d+)$/m.exec(metrics)?.[1]);
  const buckets = [...metrics.matchAll(/^hongbao_agent_shake_latency_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])] as const);
  t.is(buckets.at(-1)?.[0], '+Inf');
  t.true(buckets.every(([, n], i) => i === 0 || n >= buckets[i - 1][1]), 'cumulative');
  t.true(answered >= 700 * 3, `answered ${answered}`);
  t.is(Number(/^hongbao_agent_shake_latency_seconds_count (\d+)$/m.exec(metrics)?.[1]), answered, 'one observation per answered shake');
  t.is(buckets.at(-1)?.[1], answered);
  t.true(Number(/^hongbao_agent_shake_latency_seconds_sum (\S+)$/m.exec(metrics)?.[1]) > 0);
});

test.serial('modulo rule, burst: exact totals when QPS divides N, switching in the same second', async (t) => {
  t.timeout(45_000);
  const { stub, agents } = await fleet(t, 'modulo', 'burst');
  const want = await phases(agents, [
    [600, 3],
    [800, 3],
  ]);
  await check(t, stub.httpPort, agents, want);
});

test.serial('tcp transport, window rule, burst: agents on tcp:// against the stub\'s --tcp-port, exact totals', async (t) => {
  t.timeout(45_000);
  const { stub, agents } = await fleet(t, 'window', 'burst', 'tcp');
  const want = await phases(agents, [
    [900, 3],
    [1700, 3],
  ]);
  await check(t, stub.httpPort, agents, want);
});

test.serial('tcp transport, modulo rule, spread: exact totals when QPS divides N, switching in the same second', async (t) => {
  t.timeout(45_000);
  const { stub, agents } = await fleet(t, 'modulo', 'spread', 'tcp');
  const want = await phases(agents, [
    [600, 3],
    [1200, 3],
  ]);
  await check(t, stub.httpPort, agents, want);
});
