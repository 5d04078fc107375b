// The deploy-only install the README describes for a controller host: package.json, the lock file
// and a bundle built elsewhere, `npm ci --omit=dev` (no esbuild: prepare must not fail), and the
// bundle draws its charts from that node_modules (canvas, chartjs-node-canvas, the font).
import test from 'ava';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI, runProcess } from './helpers/process.ts';
import { assertReadablePng } from './helpers/png.ts';
import { writeRun } from './helpers/series.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

test('package: npm ci --omit=dev installs without esbuild, and the copied bundle renders charts from that node_modules', async (t) => {
  t.timeout(180_000);
  const dir = mkdtempSync(join(tmpdir(), 'hb-deploy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of ['package.json', 'package-lock.json', 'build.mjs']) copyFileSync(join(ROOT, f), join(dir, f));
  mkdirSync(join(dir, 'dist'));
  copyFileSync(CLI, join(dir, 'dist', 'hongbao.cjs'));
  // --prefer-offline: the packages `npm ci` just fetched for the project are in npm's cache.
  const ci = await runProcess('npm', ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: dir, timeoutMs: 150_000, env: { CI: '' } });
  t.is(ci.code, 0, ci.stdout + ci.stderr);
  t.regex(ci.stderr, /build: esbuild is not installed .*not building; dist\/hongbao\.cjs is left as it is/);

  const run = writeRun(join(dir, 'results'));
  const r = await runProcess(process.execPath, [join(dir, 'dist', 'hongbao.cjs'), 'chart', run], { cwd: tmpdir(), timeoutMs: 60_000 });
  t.is(r.code, 0, r.stderr);
  const charts = (JSON.parse(r.stdout.trim()) as { charts: string[] }).charts;
  t.is(charts.length, 6);
  for (const c of charts) await assertReadablePng(t, c);
});

test('package: the bundle without node_modules still runs; hongbao chart then says in one line which packages the charts need', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hb-nomodules-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(CLI, join(dir, 'hongbao.cjs'));
  const help = await runProcess(process.execPath, [join(dir, 'hongbao.cjs'), 'stub', '--help'], { cwd: dir });
  t.is(help.code, 0, help.stderr);
  const r = await runProcess(process.execPath, [join(dir, 'hongbao.cjs'), 'chart', writeRun(join(dir, 'results'))], { cwd: dir, timeoutMs: 30_000 });
  t.is(r.code, 1);
  t.regex(r.stderr, /^hongbao chart: charts need the chartjs-node-canvas and @napi-rs\/canvas packages \(npm ci in the project folder\): Cannot find package 'chartjs-node-canvas'/);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
});
