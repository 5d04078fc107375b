// Synthetic series.ndjson rows: 30k QPS for the first half, then 60k, latency growing with load,
// optionally with per-agent entries (a full fleet is 17 agents).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Histogram } from '../../common/histogram.ts';
import type { Row } from '../../controller/timeline.ts';

export function syntheticRows(start: number, seconds = 40, agents = 0): Row[] {
  const rows: Row[] = [];
  for (let i = 0; i < seconds; i++) {
    const target = i < seconds / 2 ? 30000 : 60000;
    const h = new Histogram();
    for (let k = 0; k < 200; k++) h.record((i < seconds / 2 ? 800 : 2500) + k * 10 + (i % 7) * 3);
    const perAgent: Row['agents'] = {};
    for (let a = 0; a < agents; a++) {
      const sent = Math.floor(target / agents) + (a < target % agents ? 1 : 0);
      perAgent[`agent-${String(a + 1).padStart(2, '0')}`] = {
        sent, answered: sent, won: 12, empty: sent - 12, overload: 0, missed: 0, errors: 0, claims: 0, claimedAmount: 0, connections: 60000,
        p50Ms: 1.2, p99Ms: 3.4, maxMs: 9.1, lateP99Ms: 0.3, qps: target,
      };
    }
    rows.push({
      second: start + i,
      t: i,
      targetQps: target,
      client: { sent: target, answered: target - 3, won: 200, empty: target - 203, overload: 0, missed: i === 25 ? 7 : 0, errors: 0, claims: 3, claimedAmount: 3000, connections: 60000, p50Ms: 1, p90Ms: 2, p99Ms: i < seconds / 2 ? 3 : 8, maxMs: 12, lateP99Ms: 0.4 },
      agents: perAgent,
      missingAgents: [],
      server: { connections: 60000, shakes: target, won: 200, empty: target - 200, overload: 0, logins: 0, notices: 9, claims: 3, claimedAmount: 3000, chats: 0, errors: 0, slowReaders: 0, generated: 200, sent: 3, rxPackets: target * 2, txPackets: target * 2 },
      hist: h.encode(),
    });
  }
  return rows;
}

/** Writes BASE/20270115-080000/series.ndjson (20 seconds at 100 QPS, for tests that draw charts); returns the run folder. */
export function writeRun(base: string): string {
  const dir = join(base, '20270115-080000');
  mkdirSync(dir, { recursive: true });
  const rows = Array.from({ length: 20 }, (_, i) => ({
    second: 1_800_000_000 + i,
    t: i,
    targetQps: 100,
    client: { sent: 100, answered: 100, won: 1, empty: 99, overload: 0, missed: 0, errors: 0, claims: 0, claimedAmount: 0, connections: 10, p50Ms: 1, p90Ms: 2, p99Ms: 3, maxMs: 4, lateP99Ms: 0 },
    agents: {},
    missingAgents: [],
  }));
  writeFileSync(join(dir, 'series.ndjson'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return dir;
}
