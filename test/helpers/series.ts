// A run folder with a short series.ndjson (20 seconds at 100 QPS), for tests that draw charts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Writes BASE/20270115-080000/series.ndjson; returns the run folder. */
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
