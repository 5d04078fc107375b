// The CLI the bench runs. `npm run bench` builds dist/hongbao.cjs, and the bench then runs a private
// copy of it (in the temp directory, removed on exit), so that a rebuild of dist/ during the run
// (another shell, a watcher) cannot change the program under test between or inside scenarios.
// The copy's SHA-256 goes into the JSON result. BENCH_CLI=FILE measures another build instead (e.g.
// an earlier commit's dist/hongbao.cjs, for before-and-after figures).
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST = process.env.BENCH_CLI || fileURLToPath(new URL('../dist/hongbao.cjs', import.meta.url));
let snapshot: { path: string; sha256: string } | undefined;

/** Path of the snapshot of dist/hongbao.cjs (taken on the first call). */
export function cliPath(): string {
  if (!snapshot) {
    const bytes = readFileSync(DIST);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const path = join(tmpdir(), `hongbao-bench-${process.pid}-${sha256.slice(0, 12)}.cjs`);
    copyFileSync(DIST, path);
    snapshot = { path, sha256 };
    process.once('exit', () => rmSync(path, { force: true }));
  }
  return snapshot.path;
}

/** What was measured: the source file and the SHA-256 of the snapshot (undefined before the first run). */
export function cliInfo(): { source: string; sha256: string } | undefined {
  return snapshot && { source: DIST, sha256: snapshot.sha256 };
}
