// The full-scale layout scaled down (CI runs scaled-down versions of the long runs):
// `hongbao demo --scale full --users 20000` starts the same processes as the 1,020,000-user run
// (a stub of 52 workers owning 5 of 260 SETs each, 13 agents x 4 workers over 26 source addresses),
// logs everyone in one agent after another, measures memory, and runs an exact phase.
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliProcess } from '../../common/child.ts';
import { readSeries } from '../../controller/run.ts';
import { latestRows } from '../../controller/summary.ts';
import { CLI } from '../helpers/process.ts';

const USERS = 20_000;

interface Side {
  processes: number;
  connections: number;
  kibPerConnection: number;
}

test('demo full layout: 20,000 users on 52 stub workers and 13 agents x 4 workers, all logged in, seconds exact', async (t) => {
  t.timeout(420_000);
  const results = mkdtempSync(join(tmpdir(), 'hb-full-'));
  const p = new CliProcess('demo', [process.execPath, CLI], ['demo', '--scale', 'full', '--users', String(USERS), '--phases', '400:6', '--results', results], { ...process.env });
  t.teardown(() => p.stop(20_000));
  const { code } = await p.exited;
  t.is(code, 0, p.stderr().slice(-3000));

  t.regex(p.stderr(), /20000 users on 13 agents x 4 workers from 26 source IPs, a stub with 52 workers/);
  const started = p.events.filter((e) => e.event === 'started').map((e) => String(e.name));
  t.is(started.filter((n) => n.startsWith('agent-')).length, 13);

  const connected = p.events.find((e) => e.event === 'connected') as unknown as { users: number; memory: { stub: Side; agents: Side } | null };
  t.is(connected.users, USERS);
  // Memory is read from /proc: the whole layout is there, and every connection is counted on both sides.
  t.truthy(connected.memory, 'memory measured');
  t.is(connected.memory!.stub.processes, 53, 'stub primary + 52 workers');
  t.is(connected.memory!.agents.processes, 13 * 5, '13 agents, each a primary + 4 workers');
  t.is(connected.memory!.stub.connections, USERS);
  t.is(connected.memory!.agents.connections, USERS);
  t.true(connected.memory!.stub.kibPerConnection > 0 && connected.memory!.agents.kibPerConnection > 0);

  const done = p.events.find((e) => e.event === 'demo') as unknown as { dir: string; charts: string[] };
  const rows = latestRows(readSeries(done.dir));
  const loaded = rows.filter((r) => r.targetQps === 400);
  t.true(loaded.length >= 6, `${loaded.length} loaded seconds`);
  for (const r of loaded) {
    t.is(r.client.sent + r.client.missed, 400, `second ${r.second}: sent + missed is the target`);
    t.is(r.client.answered, r.client.sent, `second ${r.second}: every shake answered`);
    t.is(Object.keys(r.agents).length, 13);
  }
  t.true(loaded.some((r) => r.client.sent === 400 && r.server?.shakes === 400), 'seconds where the fleet and the stub agree exactly');
  const sum = (f: (r: (typeof rows)[number]) => number) => rows.reduce((n, r) => n + f(r), 0);
  t.is(sum((r) => r.client.sent), sum((r) => r.server?.shakes ?? 0), 'run totals match the stub');
  t.is(done.charts.length, 6);
});
